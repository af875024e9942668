"""The importer's contract: errors, parameters and names, untying, modes, summary."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load


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
             helper.make_node("ImageDecoder", ["a"], ["b"], name="img"),
             helper.make_node("Foo", ["b"], ["y"], domain="com.acme", name="custom")]  # fmt: skip
    m = _model(nodes, [_vi("x", [2])], [_vi("y", [2])])
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    with pytest.raises(BpcliError) as e:
        load(m, check=False)
    msg = str(e.value)
    assert "2 unsupported" in msg and "img ImageDecoder" in msg
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


def test_seeded_dropout_draws_a_new_mask_each_step_and_backpropagates_through_it():
    nodes = [helper.make_node("Dropout", ["x", "ratio"], ["y", "mask"], seed=7)]
    m = _model(nodes, [_vi("x", [3, 50])], [_vi("y", [3, 50]), _vi("mask", [3, 50], 9)],
               [_init("ratio", np.array(0.25, np.float32))])  # fmt: skip
    mod = load(m).train()
    x = Tensor(
        np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32), requires_grad=True
    )
    y, mask = mod(x)
    ref = np.random.RandomState(7).uniform(0.0, 1.0, (3, 50)) >= 0.25  # the ONNX reference's draw
    np.testing.assert_array_equal(mask.data, ref)
    np.testing.assert_allclose(y.data, x.data * ref / 0.75, rtol=1e-6)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad, ref / 0.75, rtol=1e-6)
    _, mask2 = mod(x)
    assert (mask2.data != mask.data).any()  # the node's generator went on


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


# -- compositions for what the engine lacks: gradients must match torch ------------------------


def _grads_vs_torch(node, xs, torch_fn, rtol=1e-4):
    import torch

    names = [f"i{k}" for k in range(len(xs))]
    m = load(_model([node], [_vi(n, a.shape) for n, a in zip(names, xs, strict=True)],
                    [helper.make_empty_tensor_value_info("y")]), check=False)  # fmt: skip
    ts = [Tensor(a, requires_grad=True) for a in xs]
    y = m(*ts)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    F.sum(F.mul(y, g)).backward()
    tt = [torch.tensor(a, requires_grad=True) for a in xs]
    ty = torch_fn(*tt)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=1e-5)
    for t, r in zip(ts, tt, strict=True):
        np.testing.assert_allclose(t.grad, r.grad.numpy(), rtol=rtol, atol=1e-4)


def _r(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_conv3d_and_transpose_match_torch():
    import torch.nn.functional as tf

    node = helper.make_node("Conv", ["i0", "i1", "i2"], ["y"], strides=[2, 1, 2], group=2,
                            pads=[1, 0, 1, 1, 0, 1], dilations=[1, 2, 1])  # fmt: skip
    _grads_vs_torch(
        node,
        [_r(2, 4, 5, 6, 5), _r(6, 2, 3, 2, 3), _r(6)],
        lambda x, w, b: tf.conv3d(x, w, b, (2, 1, 2), (1, 0, 1), (1, 2, 1), 2),
    )
    node = helper.make_node("ConvTranspose", ["i0", "i1", "i2"], ["y"], strides=[2, 1, 2],
                            pads=[1, 0, 1, 1, 0, 1], dilations=[2, 1, 1])  # fmt: skip
    _grads_vs_torch(node, [_r(2, 3, 3, 4, 3), _r(3, 2, 3, 2, 3), _r(2)],
                    lambda x, w, b: tf.conv_transpose3d(x, w, b, (2, 1, 2), (1, 0, 1),
                                                        dilation=(2, 1, 1)))  # fmt: skip


def test_pool3d_match_torch():
    import torch.nn.functional as tf

    node = helper.make_node("MaxPool", ["i0"], ["y"], kernel_shape=[2, 3, 2], strides=[2, 1, 2],
                            pads=[1, 1, 0, 1, 1, 0], ceil_mode=1)  # fmt: skip
    _grads_vs_torch(
        node,
        [_r(2, 3, 5, 6, 5)],
        lambda x: tf.max_pool3d(x, (2, 3, 2), (2, 1, 2), (1, 1, 0), ceil_mode=True),
    )
    for inc in (0, 1):
        node = helper.make_node("AveragePool", ["i0"], ["y"], kernel_shape=[3, 3, 2],
                                strides=[2, 2, 1], pads=[1, 1, 1, 1, 1, 1], ceil_mode=1,
                                count_include_pad=inc)  # fmt: skip
        _grads_vs_torch(node, [_r(1, 2, 6, 5, 4)],
                        lambda x, inc=inc: tf.avg_pool3d(x, (3, 3, 2), (2, 2, 1), (1, 1, 1),
                                                         True, bool(inc)))  # fmt: skip


def test_lp_pool_matches_torch():
    import torch.nn.functional as tf

    node = helper.make_node("LpPool", ["i0"], ["y"], kernel_shape=[2, 3], strides=[2, 1], p=2)
    _grads_vs_torch(node, [_r(2, 3, 6, 5)], lambda x: tf.lp_pool2d(x, 2, (2, 3), (2, 1)))


def test_einsum_ellipsis_matches_torch():
    import torch

    for eq, shapes in [("...ii->...i", [(2, 3, 3)]), ("b...j,bjk->b...k", [(2, 3, 4), (2, 4, 5)]),
                       ("...ij,...jk", [(3, 2, 4), (4, 2)])]:  # fmt: skip
        xs = [_r(*s) for s in shapes]
        node = helper.make_node("Einsum", [f"i{k}" for k in range(len(xs))], ["y"], equation=eq)
        _grads_vs_torch(node, xs, lambda *ts, eq=eq: torch.einsum(eq, *ts))


def test_lstm_peepholes_reach_gradients():
    h, n, i = 3, 2, 4
    node = helper.make_node("LSTM", ["i0", "i1", "i2", "i3", "", "", "", "i4"], ["y"],
                            hidden_size=h)  # fmt: skip
    xs = [_r(5, n, i), _r(1, 4 * h, i), _r(1, 4 * h, h), _r(1, 8 * h), _r(1, 3 * h)]
    m = load(_model([node], [_vi(f"i{k}", a.shape) for k, a in enumerate(xs)],
                    [helper.make_empty_tensor_value_info("y")]), check=False)  # fmt: skip
    ts = [Tensor(a, requires_grad=True) for a in xs]
    F.sum(m(*ts)).backward()
    assert all(t.grad is not None and np.abs(t.grad).sum() > 0 for t in ts)


def test_float16_nodes_compute_in_float32_and_round_once():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3)).astype(np.float16)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Softmax", ["h"], ["s"], axis=-1),
             helper.make_node("Cast", ["s"], ["y"], to=TensorProto.FLOAT)]  # fmt: skip
    m = _model(nodes, [_vi("x", [4, 5], TensorProto.FLOAT16)], [_vi("y", [4, 3])], [_init("w", w)])
    x = rng.standard_normal((4, 5)).astype(np.float16)
    got = load(m)(x).data
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-3)  # float16 spacing near 1
    ref = (x.astype(np.float32) @ w.astype(np.float32)).astype(np.float16).astype(np.float32)
    e = np.exp(ref - ref.max(-1, keepdims=True))
    np.testing.assert_array_equal(got, (e / e.sum(-1, keepdims=True)).astype(np.float16))


def test_bitcast_keeps_the_bits_and_refuses_other_widths():
    x = np.array([1.0, -2.5], np.float32)
    m = _model([helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT32)],
               [_vi("x", [2])], [_vi("y", [2], TensorProto.INT32)], opset=26)  # fmt: skip
    np.testing.assert_array_equal(load(m)(x).data, x.view(np.int32))
    bad = _model([helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT8)],
                 [_vi("x", [2])], [_vi("y", [2], TensorProto.INT8)], opset=26)  # fmt: skip
    with pytest.raises(BpcliError, match="same bit width"):
        load(bad, check=False)(x)
