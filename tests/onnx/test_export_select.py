"""The emitters of export_select.py: each op in a tiny model, exported at several opsets and
run by onnxruntime against bpcli (at a second batch size too)."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

IDX = np.array([[[0, 3], [2, 2], [1, 0]]])  # (1, 3, 2): repeated positions along dim 2

FUNCS = {
    "prod": (lambda m, x: F.prod(x, 2) + F.prod(x, -1, keepdim=True).sum(), 13),
    "sort": (lambda m, x: F.sort(x, 2).values + F.sort(x, 1, descending=True).values
             + F.astype(F.argsort(x, 0), np.float32), 13),
    "nonzero": (lambda m, x: F.astype(F.nonzero(F.gt(x, 0)), np.float32).sum() + x, 13),
    "scatter": (lambda m, x: F.scatter(x, 2, IDX[:, :, :1], x[:1, :, :1] * 3), 13),
    "scatter_add": (lambda m, x: F.scatter_add(x, 2, IDX, x[:1, :, 1:3]), 16),
    "scatter_prod": (lambda m, x: F.scatter_reduce(x, 2, IDX, x[:1], "prod"), 16),
    "scatter_amax": (lambda m, x: F.scatter_reduce(x, 2, IDX, x[:1, :, :2], "amax")
                     + F.scatter_reduce(x, 2, IDX, x[:1, :, :2], "amin"), 18),
    "one_hot": (lambda m, x: F.astype(F.one_hot(F.argmax(x, 2), 4), np.float32) * x, 13),
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


def test_no_onnx_form_is_named(tmp_path):
    m = Fn(lambda m, x: F.median(x, 1, True).values + F.scatter_reduce(x, 2, IDX, x[:1], "mean"))
    with pytest.raises(BpcliError, match=r"median|scatter_reduce"):
        check_export(m, randn(2, 3, 4), tmp_path, OPSETS[-1])
