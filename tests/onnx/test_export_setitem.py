"""``x[index] = value`` in an exported model (exporter/ops/setitem.py), run by onnxruntime
against bpcli at several opsets, at a second batch size where the index allows it."""

from __future__ import annotations

import pytest

from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort


def _mask(m, x):
    y = x * 1
    y[y > 0.3] = 0.0
    return y


def _mask_values(m, x):
    y = x * 1
    y[y > 0.3] = y[y > 0.3] * 5  # one value per selected element
    return y


def _columns(m, x):
    y = x * 2
    y[:, 1] = y[:, 0] * 3  # torch's RNN-style write of one step
    y[:, 2, 1:3] = -1.0
    y[:, [0, 2], 0] = 7.0
    return y


def _fixed(m, x):
    y = x * 2
    y[1] = 0.5
    y[0, [0, 2], 1:3] = x[1, 0, 0]
    return y


FUNCS = {"mask": (_mask, True), "mask_values": (_mask_values, True), "columns": (_columns, True),
         "fixed": (_fixed, False)}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    fn, dynamic = FUNCS[name]
    check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset, grow=dynamic, dynamic_batch=dynamic)


def test_a_write_into_the_batch_dim_is_refused_with_a_dynamic_batch(tmp_path):
    with pytest.raises(BpcliError, match="full ':' over the batch"):
        check_export(Fn(_fixed), randn(2, 3, 4), tmp_path, OPSETS[-1])


def test_indexing_with_a_mask_or_index_made_in_the_graph(tmp_path):
    def fn(m, x):
        picked = x[x > 0.2]  # a mask of x's shape
        rows = x.reshape(-1, 4)
        best = rows[rows.sum(1).argmax(0, keepdim=True)]  # an int tensor from the data
        return picked.sum() + best.sum() + x

    for opset in OPSETS:
        check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset)
