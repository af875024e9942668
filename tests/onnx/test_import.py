"""The importer's contract: errors, parameters and names, untying, modes, summary."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer import load


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def mlp(shared=False):
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((4, 3)).astype(np.float32)
    w2 = rng.standard_normal((4, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "layer.0.weight", "layer.0.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node(
            "Gemm",
            ["r", "layer.1.weight" if not shared else "layer.2.weight", "layer.0.bias"],
            ["y"],
            transB=1,
        ),
    ]
    inits = [_init("layer.0.weight", w1), _init("layer.0.bias", np.zeros(4, np.float32)),
             _init("layer.1.weight", w2), _init("layer.2.weight", w2)]  # fmt: skip
    return _model(nodes, [_vi("x", ["N", 3])], [_vi("y", ["N", 4])], inits)


def test_parameters_keep_onnx_names_and_state_dict_round_trips():
    mod = load(mlp())
    names = [n for n, _ in mod.named_parameters()]
    assert "layer.0.weight" in names and "layer.1.weight" in names
    sd = {k: v.copy() + 1 for k, v in mod.state_dict().items()}
    mod.load_state_dict(sd)
    for k, v in mod.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_shared_initializer_is_untied():
    mod = load(mlp())
    # layer.0.bias feeds both Gemm nodes: the second gets its own copy
    names = [n for n, _ in mod.named_parameters()]
    assert "layer.0.bias#1" in names
    assert any("layer.0.bias#1" in u for u in mod.summary().untied)
    x = np.ones((2, 3), np.float32)
    F.sum(mod(x)).backward()
    assert dict(mod.named_parameters())["layer.0.bias#1"].grad is not None
    tied = load(mlp(), untie=False)
    assert "layer.0.bias#1" not in dict(tied.named_parameters())


def test_backward_reaches_every_parameter_and_frozen_import():
    mod = load(mlp())
    F.sum(mod(np.ones((2, 3), np.float32))).backward()
    assert all(p.grad is not None for n, p in mod.named_parameters() if n != "layer.2.weight")
    frozen = load(mlp(), trainable=False)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert frozen.summary().frozen


def test_run_time_input_errors_name_the_input():
    mod = load(mlp())
    with pytest.raises(BpcliError, match="expected 1 input"):
        mod(np.ones((2, 3), np.float32), np.ones(2, np.float32))
    with pytest.raises(BpcliError, match=r"input x.*shape"):
        mod(np.ones((2, 5), np.float32))
    with pytest.raises(BpcliError, match=r"input x.*dtype"):
        mod(np.ones((2, 3), np.float64))


def test_unsupported_nodes_listed_together():
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("NonMaxSuppression", ["a", "a"], ["b"], name="nms"),
             helper.make_node("Foo", ["b"], ["y"], domain="com.acme", name="custom")]  # fmt: skip
    m = _model(nodes, [_vi("x", [2])], [_vi("y", [2])])
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    with pytest.raises(BpcliError) as e:
        load(m, check=False)
    msg = str(e.value)
    assert "2 unsupported" in msg and "nms NonMaxSuppression" in msg
    assert "custom Foo (domain com.acme, opset 1)" in msg


def test_bad_files(tmp_path):
    with pytest.raises(BpcliError, match="no such file"):
        load(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a model at all" * 10)
    with pytest.raises(BpcliError, match=r"junk\.onnx"):
        load(junk)
    good = tmp_path / "good.onnx"
    onnx.save(mlp(), good)
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good.read_bytes()[:50])
    with pytest.raises(BpcliError, match=r"trunc\.onnx"):
        load(trunc)
    assert load(good)(np.ones((1, 3), np.float32)).shape == (1, 4)


def test_missing_external_data(tmp_path):
    m = mlp()
    path = tmp_path / "ext.onnx"
    onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="w.bin", size_threshold=0)  # fmt: skip
    assert load(path)(np.ones((1, 3), np.float32)).shape == (1, 4)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(BpcliError, match=r"ext\.onnx"):
        load(path)


def test_checker_failure_names_file():
    m = _model([helper.make_node("Relu", ["nope"], ["y"])], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(BpcliError, match="checker"):
        load(m)


def _bn_model(training_mode=0):
    c = 3
    inits = [_init("bn.weight", np.ones(c, np.float32)), _init("bn.bias", np.zeros(c, np.float32)),
             _init("bn.running_mean", np.zeros(c, np.float32)),
             _init("bn.running_var", np.ones(c, np.float32))]  # fmt: skip
    node = helper.make_node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.running_mean",
                            "bn.running_var"], ["y"], momentum=0.9)  # fmt: skip
    return _model([node], [_vi("x", [4, c, 2, 2])], [_vi("y", [4, c, 2, 2])], inits)


def test_batchnorm_train_mode_updates_running_stats():
    mod = load(_bn_model())
    assert set(dict(mod.named_buffers())) == {"bn.running_mean", "bn.running_var"}
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1
    mod.eval()
    np.testing.assert_allclose(mod(x).data, x / np.sqrt(1 + 1e-5), rtol=1e-5)
    mod.train()
    y = mod(x).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    rm = dict(mod.named_buffers())["bn.running_mean"].data
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    rv = dict(mod.named_buffers())["bn.running_var"].data
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-5)  # biased


def test_dropout_active_only_in_train_mode():
    nodes = [helper.make_node("Dropout", ["x", "ratio"], ["y"])]
    m = _model(nodes, [_vi("x", [100])], [_vi("y", [100])],
               [_init("ratio", np.array(0.5, np.float32))])  # fmt: skip
    mod = load(m)
    x = np.ones(100, np.float32)
    mod.eval()
    np.testing.assert_array_equal(mod(x).data, x)
    mod.train()
    y = mod(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == 0).any()


def test_old_opset_is_converted():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    m = _model(nodes, [_vi("x", [2])], [_vi("y", [2])], opset=6)
    mod = load(m)
    s = mod.summary()
    assert s.converted_from == 6 and s.opset >= 7
    assert "converted from 6" in str(s)


def test_summary_text():
    mod = load(mlp())
    text = str(mod.summary())
    assert "Gemm x2" in text and "x ['N', 3] float32" in text and "trainable" in text


def test_gradient_through_tensor_input():
    mod = load(mlp())
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    F.sum(mod(x)).backward()
    assert x.grad.shape == (2, 3)
