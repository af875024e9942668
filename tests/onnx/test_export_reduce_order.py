"""The emitters of exporter/ops/{reduce_more,scan_more,order}.py: each op in a tiny model,
exported at several opsets and run by onnxruntime against bpcli at a second batch size, on
inputs with ties and nan where the op defines what they give."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort


def f32(t):
    return F.astype(t, np.float32)


def no_nan(t):
    """nan made a number: verify compares numbers, and nan never equals nan."""
    return F.where(F.isnan(t), 7.0, t)


FUNCS = {
    "all_any": lambda m, x: f32(F.all(F.gt(x, -1), 1)) + f32(F.any(F.gt(x, 1), (0, 2), True)).sum()
    + f32(F.all(x)) + f32(F.any(F.gt(x, 9))),
    "count_nonzero": lambda m, x: f32(F.count_nonzero(F.relu(x), 2)) + f32(F.count_nonzero(x)),
    "nansum_nanmean": lambda m, x: no_nan(F.nansum(F.log(x), 1) + F.nanmean(F.log(x), -1)[:, :1]
    + F.nanmean(F.log(x)) + F.nanmean(F.log(x - 9), 2).sum()),
    "std": lambda m, x: F.std(x, 1) + F.std(x, (0, 2), correction=0, keepdim=True).sum()
    + F.std(x),
    "cummax_cummin": lambda m, x: F.cummax(F.round(x), 2).values + f32(F.cummax(F.round(x), 2)
    .indices) + F.cummin(F.round(x), 1).values * 2 + f32(F.cummin(F.round(x), 1).indices),
    "cummax_batch": lambda m, x: F.cummax(x, 0).values + f32(F.cummax(x, 0).indices),
    "cummax_nan": lambda m, x: no_nan(F.cummax(F.log(x), 2).values) + f32(F.cummax(F.log(x), 2)
    .indices) + no_nan(F.cummin(F.log(x), 1).values) + f32(F.cummin(F.log(x), 1).indices),
    "logcumsumexp": lambda m, x: F.logcumsumexp(x * 30, 2) + F.logcumsumexp(x, 0),
    "kthvalue": lambda m, x: F.kthvalue(x, 2, 2).values
    + f32(F.kthvalue(x, 3, 1, True).indices).sum(),
    "median": lambda m, x: F.median(F.round(x), 2).values + f32(F.median(F.round(x), 2).indices)
    + F.median(x, 1, True).values.sum() + F.median(x),
    "median_batch": lambda m, x: F.median(x, 0).values + f32(F.median(x, 0).indices),
    "median_nan": lambda m, x: no_nan(F.median(F.log(x), 2).values) + f32(F.median(F.log(x), 2)
    .indices) + no_nan(F.median(F.log(x))),
    "mode": lambda m, x: F.mode(F.round(x), 2).values + f32(F.mode(F.round(x), 2).indices)
    + F.mode(F.round(x), 1, True).values.sum(),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    check_export(Fn(FUNCS[name]), randn(2, 3, 4) * 1.5, tmp_path, opset)
