"""The emitters of unfold, the max pools that return indices and max_unpool
(exporter/ops/spatial.py), run by onnxruntime against bpcli at several opsets and a second
batch size (random inputs: no ties inside a window, where the winner is the backend's choice)."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort


def f32(t):
    return F.astype(t, np.float32)


def pooled(fn, **kw):
    def run(m, x):
        v, i = fn(x, **kw)
        return v, f32(i)

    return run


FUNCS = {
    "unfold": (lambda m, x: F.unfold(x, (2, 3)), (2, 3, 5, 6)),
    "unfold_padded": (lambda m, x: F.unfold(x, (2, 3), padding=1, stride=(1, 2), dilation=(2, 1)),
                      (2, 3, 5, 6)),
    "unfold_unbatched_square": (lambda m, x: F.unfold(x[0], 3, padding=2, stride=2), (2, 3, 5, 6)),
    "max_pool1d_idx": (pooled(F.max_pool1d_with_indices, kernel_size=3, stride=2, padding=1),
                       (2, 3, 9)),
    "max_pool2d_idx": (pooled(F.max_pool2d_with_indices, kernel_size=2, stride=2, padding=1),
                       (2, 3, 5, 6)),
    "max_pool2d_idx_dilated": (pooled(F.max_pool2d_with_indices, kernel_size=(2, 3), stride=1,
                                      dilation=(2, 1), ceil_mode=True), (2, 3, 7, 6)),
    "max_pool3d_idx": (pooled(F.max_pool3d_with_indices, kernel_size=2, stride=2),
                       (2, 3, 4, 4, 6)),
    "max_unpool2d": (lambda m, x: F.max_unpool2d(*F.max_pool2d_with_indices(x, 2, 2), 2),
                     (2, 3, 4, 6)),
    "max_unpool2d_size": (lambda m, x: F.max_unpool2d(*F.max_pool2d_with_indices(x, 2, 2), 2,
                                                      output_size=(5, 7)), (2, 3, 5, 7)),
    "max_unpool1d": (lambda m, x: F.max_unpool1d(*F.max_pool1d_with_indices(x, 3, 3), 3),
                     (2, 3, 9)),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    fn, shape = FUNCS[name]
    check_export(Fn(fn), randn(*shape), tmp_path, opset)
