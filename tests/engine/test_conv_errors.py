"""Bad arguments to convolutions and pooling raise BpcliError naming the op and the shapes."""

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.errors import BpcliError


def z(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize(
    "call, where, words",
    [
        (lambda: F.conv2d(z(1, 3, 5, 5), z(4, 2, 3, 3)), "conv2d", ["3 channels", "(4, 2, 3, 3)"]),
        (lambda: F.conv2d(z(1, 3, 5, 5), z(4, 1, 3, 3), groups=2), "conv2d", ["groups=2", "(3)"]),
        (lambda: F.conv2d(z(1, 4, 5, 5), z(3, 2, 3, 3), groups=2), "conv2d", ["groups=2", "(3)"]),
        (lambda: F.conv2d(z(1, 1, 2, 2), z(1, 1, 3, 3)), "conv2d", ["larger", "(1, 1, 2, 2)"]),
        (lambda: F.conv2d(z(1, 5, 5), z(1, 1, 3, 3)), "conv2d", ["(1, 5, 5)", "4 dims"]),
        (lambda: F.conv2d(z(1, 1, 5, 5), z(1, 3, 3)), "conv2d", ["(1, 3, 3)"]),
        (lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), z(2)), "conv2d", ["bias", "(2,)"]),
        (
            lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=2, padding="same"),
            "conv2d",
            ["same"],
        ),
        (lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=0), "conv2d", ["stride"]),
        (lambda: F.conv1d(z(1, 2, 5), z(1, 3, 3)), "conv1d", ["2 channels"]),
        (lambda: F.conv1d(z(1, 2, 5, 5), z(1, 2, 3)), "conv1d", ["(1, 2, 5, 5)"]),
        (
            lambda: F.conv_transpose2d(z(1, 3, 4, 4), z(2, 2, 3, 3)),
            "conv_transpose2d",
            ["3 channels"],
        ),
        (
            lambda: F.conv_transpose2d(z(1, 2, 4, 4), z(2, 2, 3, 3), output_padding=1),
            "conv_transpose2d",
            ["output_padding"],
        ),
        (lambda: F.max_pool2d(z(1, 1, 2, 2), 3), "max_pool2d", ["larger", "(1, 1, 2, 2)"]),
        (lambda: F.max_pool2d(z(1, 1, 6, 6), 2, padding=2), "max_pool2d", ["half"]),
        (lambda: F.max_pool2d(z(6, 6), 2), "max_pool2d", ["(6, 6)", "4 dims"]),
        (lambda: F.avg_pool1d(z(1, 1, 2), 3), "avg_pool1d", ["larger"]),
        (lambda: F.adaptive_avg_pool2d(z(1, 1, 4, 4), (0, 2)), "adaptive_avg_pool2d", ["positive"]),
        (lambda: F.global_avg_pool2d(z(1, 4)), "global_avg_pool2d", ["(1, 4)"]),
    ],
)
def test_bad_input_names_op_and_shapes(call, where, words):
    with pytest.raises(BpcliError) as info:
        call()
    assert info.value.where == where
    for w in words:
        assert w in info.value.msg, info.value.msg


def test_mixed_precision_is_an_error():
    with pytest.raises(BpcliError, match="dtype"):
        F.conv2d(z(1, 1, 4, 4), np.zeros((1, 1, 3, 3), np.float64))
