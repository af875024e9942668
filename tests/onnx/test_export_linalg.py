"""Export of einsum (ONNX Einsum) and of the composites built on it and matmul, run by
onnxruntime against bpcli."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.nn import Parameter
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

FUNCS = {
    "einsum_matmul": lambda m, x: F.einsum("bij,jk->bik", x, m.w),
    "einsum_ellipsis_implicit": lambda m, x: F.einsum("...j,jk", x, m.w),
    "einsum_trace_outer": lambda m, x: F.einsum("bii->b", x[:, :, :3])[:, None]
                                       * F.einsum("i,j->ij", m.w[:, 0], m.w[0]).sum(),
    "bilinear": lambda m, x: F.bilinear(x, x, m.b3, m.w[0, :2]),
    "mm_addmm_baddbmm": lambda m, x: F.baddbmm(x[:, :, :2], x, m.w[None, :, :2].expand(
        (x.shape[0], 4, 2)), beta=0.5, alpha=2.0) + F.addmm(m.w[0, :2], x[0], m.w[:, :2]),
    "cross_norms": lambda m, x: F.cross(x[:, :, :3], x[:, :, 1:], dim=2)
                                + bp.linalg.matrix_norm(x, 1, keepdim=True)
                                + bp.linalg.vector_norm(x, 3, dim=-1, keepdim=True)
                                + bp.linalg.matrix_norm(x, "fro", keepdim=True),
}  # fmt: skip


def _model(fn):
    return Fn(fn, w=Parameter(randn(4, 5, seed=5)), b3=Parameter(randn(2, 4, 4, seed=6)))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    check_export(_model(FUNCS[name]), randn(2, 3, 4), tmp_path, opset)


def test_einsum_node_written(tmp_path):
    import onnx

    _, proto = check_export(_model(FUNCS["einsum_matmul"]), randn(2, 3, 4), tmp_path, 17)
    (node,) = [n for n in proto.graph.node if n.op_type == "Einsum"]
    assert onnx.helper.get_attribute_value(node.attribute[0]) == b"bij,jk->bik"


class _Bag(Fn):
    def forward(self, idx, *psw):
        return self.fn(self, idx, *psw)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_bag_2d(mode, padding_idx, opset, tmp_path):
    def fn(m, idx):
        return F.embedding_bag(idx, m.w, mode=mode, padding_idx=padding_idx)

    idx = np.random.default_rng(0).integers(0, 4, (3, 5))
    idx[0] = 1  # a bag of padding only (when padding_idx is 1)
    check_export(_Bag(fn, w=Parameter(randn(4, 5, seed=5))), idx, tmp_path, opset)


def test_embedding_bag_per_sample_weights(tmp_path):
    def fn(m, idx, psw):
        return F.embedding_bag(idx, m.w, mode="sum", per_sample_weights=psw)

    idx = np.random.default_rng(0).integers(0, 4, (3, 5))
    # grow=False: only the first input gets a dynamic batch dim
    check_export(_Bag(fn, w=Parameter(randn(4, 5, seed=5))), (idx, randn(3, 5, seed=2)),
                 tmp_path, 17, grow=False)  # fmt: skip


def test_embedding_bag_with_offsets_is_a_clear_export_error(tmp_path):
    import bpcli.onnx as bo
    from bpcli.errors import BpcliError

    def fn(m, idx):
        return F.embedding_bag(idx, m.w, np.array([0, 2]))

    with pytest.raises(BpcliError, match="2-D input"):
        bo.export(_Bag(fn, w=Parameter(randn(4, 5, seed=5))), np.array([0, 1, 2, 3]),
                  tmp_path / "m.onnx", opset=17)  # fmt: skip
