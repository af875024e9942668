"""User mistakes in shape, index and matmul ops give a BpcliError naming the op and shapes;
reshape/transpose/expand forward passes are views, not copies."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError


def t(*shape):
    return bp.tensor(np.zeros(shape, np.float32), requires_grad=True)


@pytest.mark.parametrize(
    ("call", "where", "words"),
    [
        (lambda: t(2, 3).reshape(4, 2), "reshape", ["(2, 3)", "(4, 2)"]),
        (lambda: t(2, 3).reshape(-1, -1), "reshape", ["(2, 3)"]),
        (lambda: t(2, 3).reshape(4, -1), "reshape", ["(2, 3)"]),
        (lambda: t(2, 3).permute(0, 0), "permute", ["(0, 0)"]),
        (lambda: t(2, 3, 4).transpose(2, 0, 1), "transpose", ["permute"]),
        (lambda: t(2, 3).transpose((1, 0)), "transpose", ["permute"]),
        (lambda: t(2, 3).transpose(0, 2), "transpose", ["axis 2"]),
        (lambda: t(2, 3).swapaxes(0, 5), "transpose", ["axis 5"]),
        (lambda: t(2, 3, 4).mT.t(), "t", ["(2, 4, 3)"]),
        (lambda: t(2, 3).unsqueeze(4), "unsqueeze", ["axis 4"]),
        (lambda: t(2, 3).expand(4, 3), "expand", ["(2, 3)", "(4, 3)"]),
        (lambda: t(2, 3).expand(-1, 3, 3), "expand", ["(2, 3)"]),
        (lambda: t(2, 3).flatten(1, 0), "flatten", ["start_dim"]),
        (lambda: F.concat([t(2, 3), t(2, 4)], axis=0), "concat", ["(2, 3)", "(2, 4)"]),
        (lambda: F.concat([t(2, 3), t(2, 3, 1)], axis=1), "concat", ["(2, 3, 1)"]),
        (lambda: F.concat([], axis=0), "concat", ["non-empty"]),
        (lambda: F.stack([t(2, 3), t(3, 2)]), "stack", ["(2, 3)", "(3, 2)"]),
        (lambda: F.concat([t(2), bp.tensor(3.0)]), "concat", ["(2,), ()"]),
        (lambda: t(5).split([2, 2]), "split", ["[2, 2]", "(5,)"]),
        (lambda: t(5).chunk(0), "chunk", ["0"]),
        (lambda: F.pad(t(3, 3), (3, 0), mode="reflect"), "pad", ["too large"]),
        (lambda: F.pad(t(3), (1, 1, 1, 1)), "pad", ["(1, 1, 1, 1)"]),
        (lambda: F.pad(t(3), (1, 1), mode="wrap"), "pad", ["wrap"]),
        (lambda: t(3).repeat_interleave([1, 2]), "repeat_interleave", ["(3,)"]),
        (lambda: t(2, 3).repeat(2), "repeat", ["(2, 3)", "repeat_interleave"]),
        (lambda: t(3).tile((-1,)), "tile", ["-1"]),
        (lambda: t(3, 4)[3], "getitem", ["(3, 4)"]),
        (lambda: t(3, 4)[0, 0, 0], "getitem", ["(3, 4)"]),
        (lambda: t(3, 4)[np.array([0.5])], "getitem", ["float64"]),
        (lambda: t(3, 4)[np.ones(4, bool)], "getitem", ["(3, 4)"]),
        (lambda: t(3, 4).gather(1, np.zeros((3,), np.int64)), "gather", ["(3,)", "(3, 4)"]),
        (lambda: t(3, 4).gather(1, np.full((3, 1), 4)), "gather", ["[4, 4]", "size 4"]),
        (lambda: F.index_select(t(3, 4), 0, np.array([3])), "index_select", ["size 3"]),
        (lambda: t(2, 3) @ t(4, 5), "matmul", ["(2, 3)", "(4, 5)"]),
        (lambda: t(3) @ t(4), "matmul", ["(3,)", "(4,)"]),
        (lambda: t(2, 2, 3) @ t(3, 3, 1), "matmul", ["(2, 2, 3)", "(3, 3, 1)"]),
        (lambda: F.matmul(t(), t(3)), "matmul", ["()"]),
        (lambda: F.linear(t(2, 3), t(4, 5)), "linear", ["(2, 3)", "(4, 5)"]),
        (lambda: F.linear(t(2, 3), t(4, 3), t(3)), "linear", ["(3,)", "(4, 3)"]),
        (lambda: F.linear(t(2, 3), t(4, 3).astype("float64")), "linear", ["float32", "float64"]),
    ],
)
def test_bad_input_names_op_and_shapes(call, where, words):
    with pytest.raises(BpcliError) as info:
        call()
    assert info.value.where == where
    for w in words:
        assert w in info.value.msg, info.value.msg


def test_forward_views_share_memory():
    x = bp.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    for y in (
        x.reshape(6, 4),
        x.permute(2, 0, 1),
        x.T,
        x.unsqueeze(0),
        x[:, 1:, ::-1],
        x.reshape(1, 2, 3, 4).squeeze(0),
        x[:, :1].expand(2, 5, 4),
    ):
        assert np.shares_memory(y.numpy(), x.numpy())


def test_repeated_indices_accumulate():
    x = bp.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [[3, 3], [0, 0], [1, 1]])
    assert x.grad.dtype == np.float32


def test_linear_skips_unneeded_grads_and_keeps_float32():
    x = bp.tensor(np.ones((4, 3), np.float32))
    w = bp.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = F.linear(x, w, np.zeros(2, np.float32))
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad is None and w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, np.full((2, 3), 4.0))


def test_split_with_unused_outputs_and_two_consumers():
    x = bp.tensor(np.arange(6, dtype=np.float64), requires_grad=True)
    a, _, c = x.chunk(3)
    (a * 2 + c).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 2, 0, 0, 1, 1])
