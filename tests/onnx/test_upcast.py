"""A float16/bfloat16 graph: imported as it is, its weights are constants; upcast, it trains
in float32, `bpcli train` does that, and the export is a float32 model onnxruntime agrees with."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.load import load
from bpcli.onnx.importer.upcast import upcast
from tests.cli_helpers import run

RNG = np.random.default_rng(0)


def _half_mlp(narrow=TensorProto.FLOAT16) -> onnx.ModelProto:
    dt = helper.tensor_dtype_to_np_dtype(narrow)
    inits = [numpy_helper.from_array((RNG.standard_normal(s) * 0.1).astype(dt), n)
             for n, s in (("fc1.weight", (16, 64)), ("fc1.bias", (16,)), ("fc2.weight", (10, 16)),
                          ("fc2.bias", (10,)))]  # fmt: skip
    # a Cast into the narrow type and a narrow Constant, in a subgraph too
    then = helper.make_graph([helper.make_node("Identity", ["y0"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", narrow, ["N", 10])])  # fmt: skip
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["c"],
                          value=numpy_helper.from_array(np.array(2, dtype=dt))),
         helper.make_node("Mul", ["y0", "c"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", narrow, ["N", 10])])  # fmt: skip
    nodes = [
        helper.make_node("Cast", ["x"], ["xh"], to=narrow),
        helper.make_node("Gemm", ["xh", "fc1.weight", "fc1.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y0"], transB=1),
        helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["flag"], ["y"], then_branch=then, else_branch=other),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", narrow, ["N", 10])
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("narrow", [TensorProto.FLOAT16, TensorProto.BFLOAT16])
def test_upcast_rewrites_every_narrow_type_and_keeps_the_values(narrow):
    m = _half_mlp(narrow)
    wide, n = upcast(m)
    onnx.checker.check_model(wide, full_check=True)
    text = str(wide)
    assert n == 4 + 1 + 1 + 3  # weights, the Cast, the Constant, three graph outputs
    assert "data_type: 10" not in text and "data_type: 16" not in text
    assert str(m) != text  # the original is left as it was
    x = RNG.standard_normal((5, 64)).astype(np.float32)
    narrow_out = load(m)(x).data.astype(np.float32)
    wide_out = load(m, upcast=True)(x).data
    assert wide_out.dtype == np.float32
    # float32 end to end against the narrow graph's per-node rounding
    np.testing.assert_allclose(wide_out, narrow_out, rtol=2e-2, atol=2e-2)


def test_an_upcast_graph_trains_and_a_narrow_one_reports_constants():
    m = _half_mlp()
    assert str(load(m).summary()).count("4 float16/bfloat16 initializers are constants") == 1
    mod = load(m, upcast=True)
    assert "upcast to float32" in str(mod.summary())
    assert [p.dtype for p in mod.parameters()] == [np.float32] * 4
    x = Tensor(RNG.standard_normal((8, 64)).astype(np.float32))
    F.cross_entropy(mod(x), RNG.integers(0, 10, 8)).backward()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in mod.parameters())


@pytest.mark.ort
def test_bpcli_train_fine_tunes_a_float16_model_and_exports_float32(tmp_path):
    onnx.save(_half_mlp(), tmp_path / "half.onnx")
    res = run("train", tmp_path / "half.onnx", "--dataset", "digits", "--epochs", 1, "--out",
              tmp_path / "run")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = run("export", tmp_path / "run", "-o", tmp_path / "back.onnx", "--verify")
    assert res.exit_code == 0, res.stderr
    assert onnx.load(tmp_path / "back.onnx").graph.output[0].type.tensor_type.elem_type == 1
