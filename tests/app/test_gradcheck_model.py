import numpy as np
import pytest

from bpcli.app.experiments.gradcheck import check_module, gradcheck_source
from bpcli.app.info.plugin_check import check_plugins
from bpcli.engine.op import Op
from bpcli.nn.module import Module
from bpcli.plugins import manager


class _WrongCube(Op):
    """y = x^3; dx = g * 3 x^2 (deliberately 2.5 x^2 here)"""

    name, onnx = "test_wrong_cube", None

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, g):
        return g * 2.5 * self.x**2


class WrongCube(Module):
    example_input_shape = (2, 3)

    def forward(self, x):
        return _WrongCube.apply(x)


class _BadPlugin:
    @staticmethod
    def bpcli_register_layers(register):
        register("wrong_cube", WrongCube)


@pytest.fixture
def bad_plugin():
    manager.reset(extra_plugins=(("bad_plugin", _BadPlugin),), entry_points=False)
    yield
    manager.reset()


def test_every_builtin_layer_passes():
    report = check_plugins(include_builtins=True, kinds=("layer",), onnx=False)
    assert len(report.parts) >= 40
    bad = [(p.name, p.status, p.detail) for p in report.parts if p.status != "pass"]
    assert not bad


def test_wrong_backward_from_a_plugin_fails(bad_plugin):
    report = check_plugins(kinds=("layer",), onnx=False)
    (part,) = report.parts
    assert (part.plugin, part.name, part.status) == ("bad_plugin", "wrong_cube", "fail")
    assert "WRONG gradient of input" in part.detail
    assert not report.passed


def test_model_with_relu_and_dropout_passes():
    r = gradcheck_source("models/mlp-digits.toml")
    assert r.passed and r.kind == "spec"
    assert [lc.layer for lc in r.layers] == ["0", "3", "input"]
    assert {t.mode for t in r.tensors} == {"full", "random"}  # 3.bias has 10 elements


def test_layers_glob_and_nothing_matching():
    r = gradcheck_source("models/spirals.toml", layers=("4.*",))
    assert [t.name for t in r.tensors] == ["4.weight", "4.bias", "input"]
    m = _linear()
    r = check_module(m, np.ones((2, 4)), layers=("bias",))
    assert r.passed and [t.name for t in r.tensors] == ["bias", "input"]
    assert m.weight.dtype == np.float32  # a float64 copy was checked


def _linear():
    from bpcli.nn.layers.linear import Linear

    return Linear(4, 3)


def test_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from bpcli.onnx import export

    m = _linear()
    export(m, np.ones((2, 4), np.float32), tmp_path / "m.onnx")
    r = gradcheck_source(tmp_path / "m.onnx")
    assert r.passed and r.kind == "onnx" and r.objective == "sum(output * R)"
    assert {t.layer for t in r.tensors} >= {"input"}


def test_onnx_file_with_float32_constants_and_casts_checks_in_float64(tmp_path):
    # a Constant scale and a Cast to float: in float64 they would clash with the weights
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 4), np.float32), "w")
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(
                 np.array(0.5, np.float32))),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Mul", ["h", "s"], ["m"]),
             helper.make_node("Cast", ["m"], ["y"], to=TensorProto.FLOAT)]  # fmt: skip
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, ["N", 3])],
                          [helper.make_tensor_value_info("y", 1, ["N", 4])], [w])  # fmt: skip
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "c.onnx")  # fmt: skip
    r = gradcheck_source(tmp_path / "c.onnx")
    assert r.passed and {t.name for t in r.tensors} >= {"w"}
