"""The emitters of masked_select, searchsorted/bucketize (exporter/ops/select.py),
index_put/masked_scatter (scatter_more.py) and clamp with tensor bounds (clamp.py), each run
by onnxruntime against bpcli at several opsets and a second batch size."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

BOUNDS = np.array([-1.0, -0.25, 0.0, 0.5, 2.0], np.float32)
ROWS = np.sort(randn(3, 5, seed=4), axis=-1)  # one sorted row per dim-1 entry
I0, I1 = np.array([0, -1, 1]), np.array([[2], [0]])  # broadcast to (2, 3)


def f32(t):
    return F.astype(t, np.float32)


FUNCS = {
    "masked_select": (lambda m, x: F.masked_select(x, F.gt(x, 0)).sum() + x
                      + F.masked_select(x, F.gt(x[:1, :1], 0)).sum(), 13),
    "searchsorted": (lambda m, x: f32(F.searchsorted(BOUNDS, x)) + f32(F.searchsorted(
        BOUNDS, x, right=True)) + f32(F.searchsorted(ROWS, x[0], out_int32=True)), 13),
    "searchsorted_ties": (lambda m, x: f32(F.searchsorted(BOUNDS, F.round(x * 4) / 4))
                          + f32(F.searchsorted(BOUNDS, F.round(x * 4) / 4, side="right")), 13),
    "bucketize": (lambda m, x: f32(F.bucketize(F.round(x * 4) / 4, BOUNDS)) * 2
                  + f32(F.bucketize(F.round(x * 4) / 4, BOUNDS, right=True)), 13),
    "index_put": (lambda m, x: F.index_put(x, (I0, I1), x[0, 0, 0] * 5)
                  + F.index_put(x, (np.array([1]),), x[:1] * 2), 13),
    "index_put_accumulate": (lambda m, x: F.index_put(x, (np.array([1, 1, 0]), np.array([2, 2, 0]
                             )), np.ones((3, 4), np.float32) * x[0, 0, 0], accumulate=True), 16),
    "index_put_live_mask": (lambda m, x: F.index_put(x, (F.gt(x, 0.5),), -x[0, 0, 0]), 13),
    "masked_scatter": (lambda m, x: F.masked_scatter(x, F.gt(x, 0), x * 10 + 1)
                       + F.masked_scatter(x, F.gt(x[:1, :1, :], 0), -x), 13),
    "clamp_tensor": (lambda m, x: F.clamp(x, x[:1, :1] * 0.5, x[:, :1, :1] + 1)
                     + F.clamp(x, min=x[0, 0]) + F.clamp(x, max=x[:, 1:2] - 3), 13),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    fn, since = FUNCS[name]
    if opset < since:
        with pytest.raises(BpcliError, match="opset"):
            check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset)
        return
    check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset)


def test_index_put_with_a_bool_mask(tmp_path):
    # a constant mask over the first two dims: the batch cannot vary under it
    mask = np.array([[True, False, True], [False, False, True]])
    fn = lambda m, x: F.index_put(x, (mask,), -x[0, 0, 0])  # noqa: E731
    for opset in OPSETS:
        check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset, grow=False, dynamic_batch=False)


def test_a_sorter_is_refused_in_one_line(tmp_path):
    fn = lambda m, x: f32(F.searchsorted(BOUNDS[::-1].copy(), x, sorter=np.arange(5)[::-1].copy()))  # noqa: E731
    with pytest.raises(BpcliError, match="sorter"):
        check_export(Fn(fn), randn(2, 3, 4), tmp_path, OPSETS[-1])
