"""Functional ops through the exporter, the training-mode graph, and the error for ops that
have no ONNX form (all of them listed at once)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli import nn
from bpcli.errors import BpcliError
from bpcli.nn import Parameter
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

FUNCS = {
    "arith": lambda m, x: (x * 2 - 1) / (x.abs() + 1) + x**2 - F.exp(-x) + F.sqrt(x * x + 1),
    "log_rsqrt": lambda m, x: F.log(x * x + 1) + F.rsqrt(x * x + 1),
    "sin_cos_erf_neg": lambda m, x: F.sin(x) * F.cos(x) - F.erf(x) + F.neg(x),
    "min_max_where": lambda m, x: F.where(x > 0, F.maximum(x, 0.5), F.minimum(x, -0.5)),
    "compare_ne": lambda m, x: F.where(F.ne(x, x[:, :1]), x, 0.0) + F.astype(x >= 0, x.dtype),
    "clip": lambda m, x: F.clip(x, -0.5, 0.7) + F.clip(x, min=0.1) + F.clip(x, max=0.2),
    "reduce": lambda m, x: (F.sum(x, axis=1) + F.mean(x, axis=1) + F.amax(x, axis=1)
                            + F.amin(x, axis=1) + F.logsumexp(x, axis=1)),
    # torch's promotion: the int mask takes x's float32, the 0-d float64 sum ranks below x
    "promote": lambda m, x: x * F.astype(x > 0, np.int32) + F.astype(x, np.float64).sum(),
    "max_dim": lambda m, x: F.max(x, dim=1).values + F.min(x, 2, keepdim=True).values.sum(),
    "reduce_keep": lambda m, x: F.sum(x, axis=(1, 2), keepdims=True) * F.var(x, axis=2,
                                                                              keepdims=True),
    "reduce_batch": lambda m, x: x - F.mean(x, axis=0) + F.var(x, axis=0) + F.sum(x),
    "norms": lambda m, x: F.norm(x, axis=1) + F.norm(x, ord=3, axis=1) + F.norm(x, ord=1,
                                                                                 axis=1),
    "argmax": lambda m, x: (F.astype(F.argmax(x, axis=1), np.float32)
                            + F.argmin(x, axis=1, keepdims=True) + F.argmax(x)),
    "shape": lambda m, x: (F.permute(F.reshape(x, (x.shape[0], -1, 2)), (0, 2, 1))
                           + F.transpose(F.reshape(x, (x.shape[0], -1, 2)), 1, 2)),
    "squeeze": lambda m, x: F.squeeze(F.unsqueeze(x, (1, 3)), 3) * 2,
    "expand": lambda m, x: F.expand(x[:, :1], x.shape) + F.expand(m.w, x.shape),
    "concat_stack_split": lambda m, x: F.concat([*F.split(x, [1, 3], axis=2)[::-1],
                                                 F.stack([x, x], axis=3).sum(axis=3)], axis=2),
    "pad": lambda m, x: F.pad(x, (1, 2), value=0.5) + F.pad(x, (1, 2), mode="reflect")
                        + F.pad(x, (1, 2), mode="replicate"),
    "tile_repeat": lambda m, x: F.tile(x, (1, 2)) + F.repeat_interleave(x, 2, dim=2)[:, :, :4].sum()
                                + F.tile(x[0], (2, 1, 1)).sum() + x.repeat(1, 1, 2),
    "getitem": lambda m, x: x[:, 1:3, ::2] + x[:, None, 0, 1:3:1] + x[..., -1:][:, 1:3, :1],
    "getitem_array": lambda m, x: x[:, [2, 0, 1]] * x[:, np.array([True, False, True])][:, :1]
                                  + x[:, 0, [1, 1, 0, 2]][:, None, :],
    "getitem_int_apart": lambda m, x: x[:, :, 1][:, None] + x[0, :, [2, 0]].sum(),
    "gather": lambda m, x: F.gather(x, 2, np.zeros((1, 2, 2), np.int64) + np.arange(2))
                           + F.index_select(x, 1, [0, 2])[:1, :, :2],
    "matmul": lambda m, x: F.matmul(x, m.w.reshape(4, 1)) + F.matmul(m.v, x),
    "softmax_attention": lambda m, x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
    "cumsum": lambda m, x: F.cumsum(x, 1) + F.cumsum(x, -1, exclusive=True, reverse=True),
    "adaptive_pool_4d": lambda m, x: F.adaptive_avg_pool2d(x[:, :, :, None] * x[:, :, None],
                                                           (3, 2)),
}  # fmt: skip


def _model(fn):
    return Fn(fn, w=Parameter(randn(4, seed=5)), v=Parameter(randn(1, 3, seed=6)))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    check_export(_model(FUNCS[name]), randn(2, 3, 4), tmp_path, opset)


def test_initializer_names_and_dynamic_dims(tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.LayerNorm(5))
    res, proto = check_export(m, randn(4, 3, 4), tmp_path, 17,
                              input_names=["pixels"], output_names=["logits"])  # fmt: skip
    assert res.input_names == ["pixels"] and res.output_names == ["logits"]
    names = [i.name for i in proto.graph.initializer]
    assert {"1.weight", "1.bias", "2.weight", "2.bias"} <= set(names)
    out = proto.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "batch" and out[1].dim_value == 5


def test_static_batch(tmp_path):
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    res = bp.onnx.export(m, randn(4, 3, 4), tmp_path / "m.onnx", dynamic_batch=False)
    dims = onnx.load(str(res.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 3, 4]
    assert bp.onnx.verify(m, res.path).ok  # random inputs of the traced shape


def test_verify_random_inputs(tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(6, 2))
    res = bp.onnx.export(m, np.array([[1, 6], [0, 2]]), tmp_path / "m.onnx")
    v = bp.onnx.verify(m, res.path)
    assert v.ok and v.max_abs < 1e-5
    assert v.inputs["input"].max() <= 6


def test_training_export_structure(tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4, momentum=0.2), nn.Dropout(0.3)).eval()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    res = bp.onnx.export(m, randn(8, 6), tmp_path / "t.onnx", training=True)
    for k, v in m.state_dict().items():  # the trace did not move the running statistics
        np.testing.assert_array_equal(v, before[k])
    assert not m.training  # the mode it had before
    proto = onnx.load(str(res.path))
    onnx.checker.check_model(proto, full_check=True)
    bn = next(n for n in proto.graph.node if n.op_type == "BatchNormalization")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in bn.attribute}
    assert attrs["training_mode"] == 1 and attrs["momentum"] == pytest.approx(0.8)
    assert list(bn.input[3:]) == ["1.running_mean", "1.running_var"]
    assert res.output_names == ["output", "1.running_mean_updated", "1.running_var_updated"]
    drop = next(n for n in proto.graph.node if n.op_type == "Dropout")
    assert len(drop.input) == 3 and len(drop.output) == 2


@pytest.mark.parametrize("opset", [14, 17, OPSETS[-1]])
def test_training_export_values(opset, tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Dropout(0.0), nn.ReLU())
    x = randn(8, 6)
    res = bp.onnx.export(m, x, tmp_path / "t.onnx", opset=opset, training=True)
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    x2 = randn(5, 6, seed=4)
    got, mean, _var = sess.run(None, {"input": x2})
    m.train()
    want = m(bp.tensor(x2)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, m[1].running_mean.numpy(), rtol=1e-4, atol=1e-5)


def test_training_export_opset13_is_an_error(tmp_path):
    m = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    with pytest.raises(BpcliError, match="opset 14"):
        bp.onnx.export(m, randn(8, 6), tmp_path / "t.onnx", opset=13, training=True)


@pytest.mark.parametrize("opset", [o for o in OPSETS if o >= 16])
def test_index_add_and_cumprod(opset, tmp_path):
    idx = np.array([2, 0, 2])

    def fn(m, x):
        y = F.index_add(x, 1, idx, x[:, :3] * 2) + F.index_add(x, 2, idx, x[:, :, :3])
        return y + (F.cumprod(x, 2, exclusive=True) if opset >= 26 else 0)

    check_export(_model(fn), randn(2, 3, 4), tmp_path, opset)


def test_cumprod_before_opset_26_is_one_error(tmp_path):
    with pytest.raises(BpcliError, match=r"CumProd \(opset 26\+\)"):
        bp.onnx.export(_model(lambda m, x: F.cumprod(x, 1)), randn(2, 3, 4), tmp_path / "c.onnx")


class Cells(nn.Module):
    """An LSTMCell step (with and without biases and states) feeding a GRUCell step."""

    def __init__(self, bias: bool):
        super().__init__()
        b = (lambda n, s: Parameter(randn(n, seed=s))) if bias else (lambda n, s: None)
        self.cell = Fn(lambda m, x: F.lstm_cell(x, x[:, :2] if bias else None, None, m.wi, m.wh,
                                                m.bi, m.bh)[0],
                       wi=Parameter(randn(8, 3)), wh=Parameter(randn(8, 2, seed=1)),
                       bi=b(8, 2), bh=b(8, 3))  # fmt: skip
        self.gcell = Fn(lambda m, x: F.gru_cell(x, x if bias else None, m.wi, m.wh, m.bi, m.bh),
                        wi=Parameter(randn(6, 2, seed=4)), wh=Parameter(randn(6, 2, seed=5)),
                        bi=b(6, 6), bh=b(6, 7))  # fmt: skip

    def forward(self, x):
        return self.gcell(self.cell(x))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_and_gru_cells(bias, opset, tmp_path):
    _, proto = check_export(Cells(bias), randn(4, 3), tmp_path, opset)
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 1


def test_unsupported_ops_listed_at_once(tmp_path, monkeypatch):
    from bpcli.engine.op import OPS
    from bpcli.onnx.exporter.ops import elementwise as export_ops

    for name in ("lstm_cell", "gru_cell"):  # as if these two had no ONNX form
        monkeypatch.delitem(export_ops.EMITTERS, name)
        monkeypatch.setattr(OPS[name], "onnx", None)
    with pytest.raises(BpcliError) as e:
        bp.onnx.export(Cells(True), randn(4, 3), tmp_path / "x.onnx")
    msg = str(e.value)
    assert "2 op(s)" in msg and "lstm_cell (layer cell)" in msg and "gru_cell (layer gcell)" in msg
    assert not (tmp_path / "x.onnx").exists()


def test_bad_opset(tmp_path):
    with pytest.raises(BpcliError, match="opset 12"):
        bp.onnx.export(nn.Linear(2, 2), randn(1, 2), tmp_path / "x.onnx", opset=12)


def test_batch_dependent_constant_error(tmp_path):
    m = Fn(lambda m, x: x + bp.tensor(np.arange(x.shape[0], dtype=np.float32))[:, None])
    with pytest.raises(BpcliError, match="dynamic_batch=False"):
        bp.onnx.export(m, randn(3, 2), tmp_path / "x.onnx")
    res = bp.onnx.export(m, randn(3, 2), tmp_path / "x.onnx", dynamic_batch=False)
    assert bp.onnx.verify(m, res.path).ok


def test_an_op_newer_than_the_opset_is_a_one_line_error(tmp_path):
    # An op type the opset lacks (a plugin's Mish at 17) must not reach the checker's raw
    # ValidationError.
    import onnx

    from bpcli.onnx.exporter.export import _check_opset

    node = onnx.helper.make_node("Mish", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", 1, [2])],
        [onnx.helper.make_tensor_value_info("y", 1, [2])],
    )  # fmt: skip
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    with pytest.raises(
        BpcliError, match=r"opset 17 has no Mish \(opset 18\+\); export with --opset 18"
    ):
        _check_opset(proto, 17)


def test_a_constant_computed_from_the_input_values_is_refused(tmp_path):
    # the index comes from numpy, outside the traced ops: the file would freeze it
    m = _model(lambda m, x: F.gather(x, 2, np.argsort(x.data, axis=2)))
    for dynamic in (True, False):
        with pytest.raises(BpcliError, match="changes with the model's input values"):
            bp.onnx.export(m, randn(2, 3, 4), tmp_path / "x.onnx", dynamic_batch=dynamic)
    assert not (tmp_path / "x.onnx").exists()


def _imported(nodes, out_shape, opset=17):
    from onnx import TensorProto, helper, numpy_helper

    from bpcli.onnx.importer.load import load

    w = numpy_helper.from_array(randn(6, 6, seed=3), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), *nodes], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], [w],
    )  # fmt: skip
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))


@pytest.mark.parametrize("case", ["topk", "argmax_gather", "random"])
def test_imported_graphs_with_data_dependent_indices(case, tmp_path):
    from onnx import helper

    k = helper.make_node("Constant", [], ["k"], value_ints=[2])
    nodes = {
        "topk": [k, helper.make_node("TopK", ["h", "k"], ["y", "i"], axis=1)],
        "argmax_gather": [helper.make_node("ArgMax", ["h"], ["a"], axis=1),
                          helper.make_node("GatherElements", ["h", "a"], ["y"], axis=1)],
        "random": [helper.make_node("RandomNormalLike", ["h"], ["r"]),
                   helper.make_node("Add", ["h", "r"], ["y"])],
    }[case]  # fmt: skip
    mod = _imported(nodes, ["N", None])
    if case == "random":  # a fresh draw each call cannot be one constant of the file
        with pytest.raises(BpcliError, match="drawn at random"):
            bp.onnx.export(mod, randn(4, 6), tmp_path / "m.onnx")
        return
    res = bp.onnx.export(mod, randn(4, 6), tmp_path / "m.onnx")
    v = bp.onnx.verify(mod, res.path, randn(7, 6, seed=9))
    assert v.ok, (v.max_abs, v.per_output)
