"""Import of the quantization ops: forward against onnxruntime (numpy where it has no kernel),
the fake-quantization gradient against torch.fake_quantize_* and the LSQ gradient of
torch._fake_quantize_learnable_*, and the gradient into a DequantizeLinear scale."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.ort, pytest.mark.torch]
T = TensorProto


def _init(name, a):
    return a if isinstance(a, TensorProto) else numpy_helper.from_array(np.asarray(a), name)


def _model(nodes, inputs, inits, outputs, opset):
    """``inputs``: name -> array (graph inputs); ``inits``: name -> array or TensorProto;
    ``outputs``: name -> element type, or (element type, rank); the rank defaults to the first
    input's."""
    if isinstance(nodes, tuple):
        nodes = [helper.make_node(*nodes[:3], **nodes[3])]
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in inputs.items()]  # fmt: skip
    rank = next(iter(inputs.values())).ndim
    outs = []
    for n, t in outputs.items():
        t, r = t if isinstance(t, tuple) else (t, rank)
        outs.append(helper.make_tensor_value_info(n, t, [None] * r))
    g = helper.make_graph(nodes, "g", vis, outs, [_init(n, a) for n, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 11 if opset >= 24 else 10  # what onnxruntime 1.17+ reads
    return m


def _ort(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _ours(model, feeds, trainable=False):
    out = load(model, trainable=trainable)(*[Tensor(a.copy()) for a in feeds.values()])
    return [o.data for o in (out if isinstance(out, tuple) else (out,))]


def _same(model, feeds):
    """Ours equals onnxruntime's, value for value and in dtype."""
    for got, want in zip(_ours(model, feeds), _ort(model, feeds), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))


def _zp(dtype_code, values, shape=None):
    values = np.asarray(values, np.float32)
    return helper.make_tensor("zp", dtype_code, values.shape if shape is None else shape,
                              values.ravel().tolist())  # fmt: skip


def _x(rng, *shape, spread=40.0):
    x = (rng.standard_normal(shape) * spread).astype(np.float32)
    x.ravel()[:4] = [0.25, 0.75, -0.25, -1.25]  # ties at scale 0.5: rounding half to even
    return x


# -- QuantizeLinear / DequantizeLinear against onnxruntime -------------------------------------

PER_TENSOR = [(10, T.UINT8, 128), (13, T.INT8, -3), (19, T.UINT8, 7), (21, T.INT16, 100),
              (21, T.UINT16, 30000), (21, T.INT4, 1), (21, T.UINT4, 2), (25, T.INT2, 0),
              (25, T.UINT2, 1), (19, T.FLOAT8E4M3FN, 0), (19, T.FLOAT8E5M2, 0)]  # fmt: skip


def _qdq_pair(x, inits, opset, saturate=1):
    """x -> QuantizeLinear -> (Cast to float, DequantizeLinear): onnxruntime's Python API
    cannot return 4-bit, 2-bit or float8 arrays, so the quantized values come back as floats."""
    sat = {"saturate": saturate} if opset >= 19 else {}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], **sat),
             helper.make_node("Cast", ["q"], ["qf"], to=T.FLOAT),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"])]  # fmt: skip
    return _model(nodes, {"x": x}, inits, {"qf": T.FLOAT, "y": T.FLOAT}, opset)


@pytest.mark.parametrize("opset,to,zp", PER_TENSOR)
def test_quantize_dequantize_per_tensor(opset, to, zp):
    rng = np.random.default_rng(0)
    x = _x(rng, 3, 7)
    x[0, 5:] = [1e6, -1e6]  # saturate
    _same(_qdq_pair(x, {"s": np.float32(0.5), "zp": _zp(to, [zp], [])}, opset), {"x": x})


@pytest.mark.parametrize("saturate", [0, 1])
def test_quantize_float8_saturate(saturate):
    x = np.array([0.0, 1.0, 3.3, 500.0, -1e5, np.inf, -np.inf], np.float32)
    for to in (T.FLOAT8E4M3FN, T.FLOAT8E5M2):
        inits = {"s": np.float32(1.0), "zp": _zp(to, [0], [])}
        _same(_qdq_pair(x, inits, 19, saturate=saturate), {"x": x})


def test_quantize_per_axis_and_negative_axis():
    rng = np.random.default_rng(1)
    x = _x(rng, 2, 3, 4)
    inits = {"s": np.array([0.5, 2.0, 0.1], np.float32), "zp": np.array([0, 10, 250], np.uint8)}
    for opset, axis in ((13, 1), (21, -2)):
        m = _model(("QuantizeLinear", ["x", "s", "zp"], ["y"], {"axis": axis}), {"x": x}, inits,
                   {"y": T.UINT8}, opset)  # fmt: skip
        _same(m, {"x": x})
        q = _ort(m, {"x": x})[0]
        dq = _model(("DequantizeLinear", ["q", "s", "zp"], ["y"], {"axis": axis}), {"q": q},
                    inits, {"y": T.FLOAT}, opset)  # fmt: skip
        _same(dq, {"q": q})


def test_blocked_quantization_with_a_partial_last_block():
    rng = np.random.default_rng(2)
    x = _x(rng, 3, 5)
    s = np.abs(rng.standard_normal((3, 3))).astype(np.float32) + 0.1
    zp = rng.integers(-5, 5, (3, 3)).astype(np.int8)
    attrs = {"axis": 1, "block_size": 2}
    m = _model(("QuantizeLinear", ["x", "s", "zp"], ["y"], attrs), {"x": x}, {"s": s, "zp": zp},
               {"y": T.INT8}, 21)  # fmt: skip
    _same(m, {"x": x})
    q = _ort(m, {"x": x})[0]
    _same(_model(("DequantizeLinear", ["q", "s", "zp"], ["y"], attrs), {"q": q},
                 {"s": s, "zp": zp}, {"y": T.FLOAT}, 21), {"q": q})  # fmt: skip


def test_quantize_output_dtype_without_zero_point_and_int32_dequantize():
    rng = np.random.default_rng(3)
    x = _x(rng, 4, 6, spread=1e4)
    m = _model(("QuantizeLinear", ["x", "s"], ["y"], {"output_dtype": T.INT16}), {"x": x},
               {"s": np.float32(0.3)}, {"y": T.INT16}, 21)  # fmt: skip
    _same(m, {"x": x})
    q = rng.integers(-(2**20), 2**20, (4, 6)).astype(np.int32)
    _same(_model(("DequantizeLinear", ["q", "s"], ["y"], {}), {"q": q}, {"s": np.float32(0.3)},
                 {"y": T.FLOAT}, 13), {"q": q})  # fmt: skip


def test_dequantize_float16_scale_and_output_dtype():
    q = np.arange(-20, 20, dtype=np.int8).reshape(5, 8)
    s16 = np.float16(0.0123)
    _same(_model(("DequantizeLinear", ["q", "s"], ["y"], {}), {"q": q}, {"s": s16},
                 {"y": T.FLOAT16}, 19), {"q": q})  # fmt: skip
    m = _model(("DequantizeLinear", ["q", "s"], ["y"], {"output_dtype": T.FLOAT16}), {"q": q},
               {"s": np.float32(0.0123)}, {"y": T.FLOAT16}, 23)  # fmt: skip
    got = _ours(m, {"q": q})[0]
    want = (q.astype(np.float32) * np.float32(0.0123)).astype(np.float16)  # ORT lacks this case
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)


def test_quantize_precision_attribute():
    x = np.array([1.0009766, 2.0, 3.0019531, -7.5], np.float32)
    m = _model(("QuantizeLinear", ["x", "s", "zp"], ["y"], {"precision": T.FLOAT16}), {"x": x},
               {"s": np.float32(0.0625), "zp": np.int16(0)}, {"y": T.INT16}, 23)  # fmt: skip
    want = np.rint(x.astype(np.float16) / np.float16(0.0625)).astype(np.int16)
    np.testing.assert_array_equal(_ours(m, {"x": x})[0], want)


def test_float4_targets_saturate_without_onnxruntime():
    x = np.array([0.0, 0.7, 2.6, -5.1, 100.0, -np.inf], np.float32)
    m = _model(
        ("QuantizeLinear", ["x", "s", "zp"], ["y"], {}),
        {"x": x},
        {"s": np.float32(1.0), "zp": _zp(T.FLOAT4E2M1, [0], [])},
        {"y": T.FLOAT4E2M1},
        23,
    )
    got = _ours(m, {"x": x})[0].astype(np.float32)
    np.testing.assert_array_equal(got, [0.0, 0.5, 3.0, -6.0, 6.0, -6.0])


def test_quantize_errors_name_the_attribute():
    x = np.ones((2, 4), np.float32)
    m = _model(("QuantizeLinear", ["x", "s", "zp"], ["y"], {"output_dtype": T.INT8}), {"x": x},
               {"s": np.float32(1), "zp": np.uint8(0)}, {"y": T.UINT8}, 21)  # fmt: skip
    with pytest.raises(BpcliError, match="output_dtype"):
        _ours(m, {"x": x})
    m = _model(("QuantizeLinear", ["x", "s"], ["y"], {"axis": 1, "block_size": 3}), {"x": x},
               {"s": np.ones((2, 3), np.float32)}, {"y": T.UINT8}, 21)  # fmt: skip
    with pytest.raises(BpcliError, match="block_size 3"):
        _ours(m, {"x": x})


def test_dynamic_quantize_linear():
    rng = np.random.default_rng(4)
    cases = [_x(rng, 3, 5, spread=2.0), -np.abs(_x(rng, 6)), np.zeros(4, np.float32),
             np.array([1.0, np.nan, -3.0, 2.5], np.float32)]  # fmt: skip
    for x in cases:
        m = _model(("DynamicQuantizeLinear", ["x"], ["y", "s", "zp"], {}), {"x": x}, {},
                   {"y": T.UINT8, "s": (T.FLOAT, 0), "zp": (T.UINT8, 0)}, 11)  # fmt: skip
        _same(m, {"x": x})


# -- integer matmul and conv against onnxruntime -------------------------------------------


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qlinear_matmul(dt):
    rng = np.random.default_rng(5)
    info = np.iinfo(dt)
    for sa, sb in (((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5))):
        a = rng.integers(info.min, info.max, sa).astype(dt)
        b = rng.integers(info.min, info.max, sb).astype(dt)
        inits = {"as": np.float32(0.02), "az": dt(3), "bs": np.float32(0.01), "bz": dt(2),
                 "ys": np.float32(0.05), "yz": dt(5)}  # fmt: skip
        node = ("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], {})
        out_t = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
        _same(_model(node, {"a": a, "b": b}, inits, {"y": out_t}, 10), {"a": a, "b": b})


def test_qlinear_matmul_float8_follows_the_formula():
    rng = np.random.default_rng(6)
    f8 = helper.tensor_dtype_to_np_dtype(T.FLOAT8E4M3FN)
    a = rng.standard_normal((3, 4)).astype(f8)
    b = rng.standard_normal((4, 2)).astype(f8)
    zero = np.zeros((), f8)
    inits = {"as": np.float32(2), "az": zero, "bs": np.float32(0.5), "bz": zero,
             "ys": np.float32(0.25), "yz": zero}  # fmt: skip
    node = ("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], {})
    got = _ours(_model(node, {"a": a, "b": b}, inits, {"y": T.FLOAT8E4M3FN}, 21), {"a": a, "b": b})
    want = (a.astype(np.float32) @ b.astype(np.float32) * 4).astype(f8)
    np.testing.assert_array_equal(got[0].astype(np.float32), want.astype(np.float32))


def test_matmul_integer_zero_points():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 255, (2, 3, 6)).astype(np.uint8)
    b = rng.integers(-128, 127, (6, 4)).astype(np.int8)
    node = ("MatMulInteger", ["a", "b", "az", "bz"], ["y"], {})
    bz = np.array([0, -3, 5, 127], np.int8)  # per column of b
    m = _model(node, {"a": a, "b": b}, {"az": np.uint8(9), "bz": bz}, {"y": T.INT32}, 10)
    _same(m, {"a": a, "b": b})
    _same(_model(("MatMulInteger", ["a", "b"], ["y"], {}), {"a": a, "b": b}, {}, {"y": T.INT32},
                 10), {"a": a, "b": b})  # fmt: skip
    az = np.array([1, 100, 255], np.uint8)  # per row of a: onnxruntime has no kernel for it
    m = _model(node, {"a": a, "b": b}, {"az": az, "bz": bz}, {"y": T.INT32}, 10)
    want = (a.astype(np.int32) - az[:, None]) @ (b.astype(np.int32) - bz)
    np.testing.assert_array_equal(_ours(m, {"a": a, "b": b})[0], want)


CONV = [dict(pads=[1, 1, 1, 1]), dict(strides=[2, 1], dilations=[1, 2]), dict(group=2),
        dict(auto_pad="SAME_UPPER")]  # fmt: skip


@pytest.mark.parametrize("attrs", CONV)
def test_conv_integer(attrs):
    rng = np.random.default_rng(8)
    x = rng.integers(0, 255, (1, 4, 6, 7)).astype(np.uint8)
    w = rng.integers(0, 255, (6, 4 // attrs.get("group", 1), 3, 3)).astype(np.uint8)
    node = ("ConvInteger", ["x", "w", "xz", "wz"], ["y"], attrs)
    inits = {"w": w, "xz": np.uint8(128), "wz": np.uint8(7)}
    _same(_model(node, {"x": x}, inits, {"y": T.INT32}, 10), {"x": x})


@pytest.mark.parametrize("attrs", CONV)
def test_qlinear_conv_per_channel(attrs):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 255, (2, 4, 6, 7)).astype(np.uint8)
    w = rng.integers(-127, 127, (6, 4 // attrs.get("group", 1), 3, 3)).astype(np.int8)
    inits = {"xs": np.float32(0.02), "xz": np.uint8(120), "w": w,
             "ws": (rng.random(6) * 0.01 + 0.001).astype(np.float32), "wz": np.zeros(6, np.int8),
             "ys": np.float32(0.3), "yz": np.uint8(100),
             "B": rng.integers(-2000, 2000, 6).astype(np.int32)}  # fmt: skip
    node = ("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"], attrs)
    _same(_model(node, {"x": x}, inits, {"y": T.UINT8}, 10), {"x": x})


def test_qlinear_conv_1d():
    rng = np.random.default_rng(10)
    x = rng.integers(-128, 127, (2, 3, 9)).astype(np.int8)
    inits = {"xs": np.float32(0.05), "xz": np.int8(-1),
             "w": rng.integers(-127, 127, (4, 3, 3)).astype(np.int8), "ws": np.float32(0.01),
             "wz": np.int8(0), "ys": np.float32(0.1), "yz": np.int8(3)}  # fmt: skip
    node = ("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], {"pads": [1, 2]})
    _same(_model(node, {"x": x}, inits, {"y": T.INT8}, 10), {"x": x})


# -- gradients -----------------------------------------------------------------------------


def _qdq(x_shape, s, zp, zp_type, axis=1, opset=13):
    """x -> QuantizeLinear -> DequantizeLinear, scale and zero point initializers."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], axis=axis),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], axis=axis),
    ]
    zpt = helper.make_tensor("zp", zp_type, list(np.shape(zp)), np.ravel(zp).tolist())
    x = np.zeros(x_shape, np.float32)
    return _model(nodes, {"x": x}, {"s": np.asarray(s, np.float32), "zp": zpt}, {"y": T.FLOAT},
                  opset)  # fmt: skip


def _run_qdq(model, x, g, trainable):
    mod = load(model, trainable=trainable)
    xt = Tensor(x.copy(), requires_grad=True)
    y = mod(xt)
    (y * Tensor(g)).sum().backward()
    return y.data, xt.grad, mod


def test_fake_quant_per_tensor_straight_through_matches_torch():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 5)) * 30).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx, _ = _run_qdq(_qdq(x.shape, 0.25, -10, T.INT8), x, g, trainable=False)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.fake_quantize_per_tensor_affine(xt, 0.25, -10, -128, 127)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    assert (dx == 0).any() and (dx != 0).any()  # both sides of the clip range are exercised


def test_fake_quant_per_channel_straight_through_matches_torch():
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((2, 3, 4)) * 20).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    s, zp = np.array([0.125, 0.5, 0.0625], np.float32), np.array([0, 128, 200], np.uint8)
    y, dx, _ = _run_qdq(_qdq(x.shape, s, zp, T.UINT8), x, g, trainable=False)
    xt = torch.tensor(x, requires_grad=True)
    zpt = torch.tensor(zp, dtype=torch.int32)
    yt = torch.fake_quantize_per_channel_affine(xt, torch.tensor(s), zpt, 1, 0, 255)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    assert (dx == 0).any() and (dx != 0).any()


def test_fake_quant_forward_is_exactly_onnxruntime():
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((6, 7)) * 3).astype(np.float32)
    m = _qdq(x.shape, 0.0371, 3, T.INT8)
    y, _, _ = _run_qdq(m, x, np.ones_like(x), trainable=True)
    np.testing.assert_array_equal(y, _ort(m, {"x": x})[0])


def test_learnable_scale_gets_the_lsq_gradient():
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((3, 8)) * 2).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx, mod = _run_qdq(_qdq(x.shape, 0.02, 0, T.INT8), x, g, trainable=True)
    xt = torch.tensor(x, requires_grad=True)
    st = torch.tensor([0.02], requires_grad=True)
    yt = torch._fake_quantize_learnable_per_tensor_affine(xt, st, torch.tensor([0.0]), -128, 127,
                                                          1.0)  # fmt: skip
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    ds = mod._parameters["s"].grad
    np.testing.assert_allclose(ds, st.grad.numpy()[0], rtol=1e-4)


def test_learnable_per_channel_scale_gets_the_lsq_gradient():
    rng = np.random.default_rng(15)
    x = (rng.standard_normal((2, 3, 5)) * 2).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    s, zp = np.array([0.01, 0.03, 0.005], np.float32), np.array([10, -4, 0], np.int8)
    y, dx, mod = _run_qdq(_qdq(x.shape, s, zp, T.INT8), x, g, trainable=True)
    xt = torch.tensor(x, requires_grad=True)
    st = torch.tensor(s, requires_grad=True)
    zpt = torch.tensor(zp, dtype=torch.float32)
    yt = torch._fake_quantize_learnable_per_channel_affine(xt, st, zpt, 1, -128, 127, 1.0)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mod._parameters["s"].grad, st.grad.numpy(), rtol=1e-4)


def test_blocked_fake_quant_matches_per_element_lsq():
    """Blocked scales are the per-element scales repeated: the LSQ gradient summed per block."""
    rng = np.random.default_rng(17)
    x = (rng.standard_normal((2, 5)) * 2).astype(np.float32)
    s = np.array([[0.01, 0.02, 0.05], [0.03, 0.004, 0.02]], np.float32)
    nodes = [
        helper.make_node(op, [i, "s"], [o], axis=1, block_size=2)
        for op, i, o in (("QuantizeLinear", "x", "q"), ("DequantizeLinear", "q", "y"))
    ]
    m = _model(nodes, {"x": x}, {"s": s}, {"y": T.FLOAT}, 21)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx, mod = _run_qdq(m, x, g, trainable=True)
    np.testing.assert_array_equal(y, _ort(m, {"x": x})[0])
    xt = torch.tensor(x, requires_grad=True)
    st = torch.tensor(s, requires_grad=True)
    se = st.repeat_interleave(2, dim=1)[:, :5].reshape(-1)
    yt = torch._fake_quantize_learnable_per_channel_affine(
        xt.reshape(10, 1), se, torch.zeros(10), 0, 0, 255, 1.0
    )
    (yt.reshape(2, 5) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mod._parameters["s"].grad, st.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_dequantize_scale_parameter_gets_its_gradient():
    rng = np.random.default_rng(16)
    w = rng.integers(-128, 127, (4, 3)).astype(np.int8)
    s = np.array([0.1, 0.02, 0.3], np.float32)
    zp = np.array([1, -2, 0], np.int8)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    nodes = [
        helper.make_node("DequantizeLinear", ["w", "s", "zp"], ["wf"], axis=1),
        helper.make_node("MatMul", ["x", "wf"], ["y"]),
    ]
    m = _model(nodes, {"x": x}, {"w": w, "s": s, "zp": zp}, {"y": T.FLOAT}, 13)
    mod = load(m)
    mod(Tensor(x)).sum().backward()
    st = torch.tensor(s, requires_grad=True)
    wt = (torch.tensor(w, dtype=torch.float32) - torch.tensor(zp, dtype=torch.float32)) * st
    (torch.tensor(x) @ wt).sum().backward()
    np.testing.assert_allclose(mod._parameters["s"].grad, st.grad.numpy(), rtol=1e-5)


def test_dynamic_quantize_passes_the_gradient_straight_through():
    x = np.linspace(-3, 5, 12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "zp"]),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"])]  # fmt: skip
    m = _model(nodes, {"x": x}, {}, {"y": T.FLOAT}, 13)
    y, dx, _ = _run_qdq(m, x, np.full_like(x, 2.0), trainable=False)
    np.testing.assert_array_equal(y, _ort(m, {"x": x})[0])
    np.testing.assert_allclose(dx, 2.0, rtol=1e-6)  # the range covers x: nothing saturates


def test_dequantize_with_another_scale_reads_the_twin(tmp_path):
    """A DequantizeLinear that does not undo its QuantizeLinear (another scale) is computed from
    the twin: exact values, dx = g * s2 / s1 inside the range; no fake_quantize to export."""
    import bpcli as bp

    rng = np.random.default_rng(19)
    x = (rng.standard_normal((4, 6)) * 30).astype(np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s1", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s2", "zp"], ["y"])]  # fmt: skip
    inits = {"s1": np.float32(0.25), "s2": np.float32(0.5), "zp": np.int8(3)}
    m = _model(nodes, {"x": x}, inits, {"y": T.FLOAT}, 13)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx, mod = _run_qdq(m, x, g, trainable=False)
    np.testing.assert_array_equal(y, _ort(m, {"x": x})[0])
    r = np.rint(x / np.float32(0.25)) + 3
    inside = (r >= -128) & (r <= 127)
    assert inside.any() and not inside.all()
    np.testing.assert_allclose(dx, np.where(inside, g * 2, 0), rtol=1e-6)
    with pytest.raises(BpcliError, match="changes with the model's input values"):
        bp.onnx.export(mod, x, tmp_path / "x.onnx", dynamic_batch=False)


def test_an_integer_op_on_a_fake_quantized_value_is_reported():
    x = np.zeros((2, 3), np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
        helper.make_node("MatMulInteger", ["q", "w"], ["y"]),
    ]
    m = _model(nodes, {"x": x}, {"s": np.float32(0.1), "zp": np.uint8(3),
                                 "w": np.ones((3, 2), np.uint8)}, {"y": T.INT32}, 13)  # fmt: skip
    mod = load(m)
    mod(Tensor(x, requires_grad=True))
    assert "MatMulInteger" in mod.summary().no_gradient_ops


# -- QDQ round trip: import, train, export back as QuantizeLinear -> DequantizeLinear --------


class _TorchQDQ(torch.nn.Module):
    """The model torch.onnx writes as QDQ: fake-quantized activations (per tensor), and with
    ``per_channel`` fc1's weight fake-quantized per output channel."""

    def __init__(self, per_channel: bool):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
        self.per_channel = per_channel
        self.register_buffer("ws", self.fc1.weight.detach().abs().amax(1) / 127)

    def q(self, x):
        return torch.fake_quantize_per_tensor_affine(x, 0.05, 0, -128, 127)

    def forward(self, x):
        w = self.fc1.weight
        if self.per_channel:
            zp = torch.zeros(32, dtype=torch.int32)
            w = torch.fake_quantize_per_channel_affine(w, self.ws, zp, 0, -128, 127)
        h = torch.relu(torch.nn.functional.linear(self.q(x), w, self.fc1.bias))
        return self.fc2(self.q(h))


def _torch_qdq_onnx(per_channel: bool):
    import io
    import warnings

    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TorchQDQ(per_channel).eval(), torch.zeros(2, 64), buf, dynamo=False,
                          opset_version=13, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}})  # fmt: skip
    return onnx.load_from_string(buf.getvalue())


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_trained_qdq_model_exports_back_and_verifies(per_channel, tmp_path):
    import bpcli as bp
    from bpcli import functional as F

    mod = load(_torch_qdq_onnx(per_channel))
    rng = np.random.default_rng(18)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    before = {k: v.copy() for k, v in mod.state_dict().items()}
    opt = bp.optim.SGD(mod.parameters(), lr=0.1)
    F.cross_entropy(mod(Tensor(x)), rng.integers(0, 10, 8)).backward()
    opt.step()
    moved = [k for k, v in mod.state_dict().items() if not np.array_equal(v, before[k])]
    assert {"fc1.weight", "fc2.weight"} <= set(moved)  # through both fake quantizations
    assert ("ws" in moved) == per_channel  # the per-channel scale learns (LSQ)
    res = bp.onnx.export(mod, x, tmp_path / "back.onnx")
    n = 3 if per_channel else 2
    assert res.op_types["QuantizeLinear"] == res.op_types["DequantizeLinear"] == n
    v = bp.onnx.verify(mod, res.path, rng.standard_normal((5, 64)).astype(np.float32))
    assert v.ok, (v.max_abs, v.max_rel)
    if per_channel:
        import onnx

        axes = [a.i for nd in onnx.load(str(res.path)).graph.node for a in nd.attribute
                if nd.op_type == "QuantizeLinear" and a.name == "axis"]  # fmt: skip
        assert axes == [0]


# -- F.fake_quantize through the exporter -------------------------------------------------------


def _fq_model(fn, **params):
    from tests.onnx.export_helpers import Fn

    return Fn(fn, **params)


def test_fake_quantize_export_layouts_and_types(tmp_path):
    from bpcli import functional as F
    from bpcli.nn import Parameter
    from tests.onnx.export_helpers import check_export, randn

    s_axis = Parameter(np.array([0.05, 0.1, 0.02, 0.2], np.float32))
    zp = np.array([0, 3, -2, 7], np.int64)
    per_axis = _fq_model(lambda m, x: F.fake_quantize(x * 3, m.s, zp, -128, 127, 1) * 2,
                         s=s_axis)  # fmt: skip
    check_export(per_axis, randn(3, 4), tmp_path, 13)
    uint8 = _fq_model(lambda m, x: F.fake_quantize(x, 0.03, 128, 0, 255))
    check_export(uint8, randn(3, 4), tmp_path, 17)
    s_block = Parameter(np.abs(randn(4, 2, seed=2)) * 0.1 + 0.01)  # blocks of fc weights
    w = Parameter(randn(4, 5, seed=3))
    blocked = _fq_model(lambda m, x: x @ F.fake_quantize(m.w, m.s, 1, -8, 7, 1, block_size=3).T,
                        s=s_block, w=w)  # fmt: skip
    _, proto = check_export(blocked, randn(3, 5), tmp_path, 21)
    q = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear")
    assert {a.name: a.i for a in q.attribute} == {"axis": 1, "block_size": 3}


def test_fake_quantize_export_refusals(tmp_path):
    import bpcli as bp
    from bpcli import functional as F
    from bpcli.nn import Parameter

    x = np.ones((2, 4), np.float32)
    cases = [
        (lambda m, x: F.fake_quantize(x, 0.1, 0, -127, 127), 17, r"\[-127, 127\]"),
        (lambda m, x: F.fake_quantize(x, 0.1, 0, -32768, 32767), 17, "opset 21"),
        (lambda m, x: x @ F.fake_quantize(m.w, np.full((4, 2), 0.1, np.float32), 0, -128, 127,
                                          1, block_size=2), 20, "blocked scales needs opset 21"),
    ]  # fmt: skip
    for fn, opset, msg in cases:
        with pytest.raises(BpcliError, match=msg):
            bp.onnx.export(_fq_model(fn, w=Parameter(np.ones((4, 4), np.float32))), x,
                           tmp_path / "x.onnx", opset=opset)  # fmt: skip
    with pytest.raises(BpcliError, match="float64"):
        bp.onnx.export(_fq_model(lambda m, x: F.fake_quantize(x, 0.1, 0, -128, 127)),
                       x.astype(np.float64), tmp_path / "x.onnx")  # fmt: skip
