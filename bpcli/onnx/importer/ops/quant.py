"""Import of the quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger.

Quantized values are exact: rounding (half to even) and saturation run in numpy, integer
products are summed in int64 (convolutions in float64 on the Conv importer, exact for these
magnitudes) and wrap to int32 as the spec allows. Requantization scales are float32 products,
as onnxruntime computes them.

Training through quantized graphs
---------------------------------
DequantizeLinear is ``y = (x - zp) * scale`` on engine ops whenever its scale needs a
gradient, so a float scale initializer (a Parameter) learns with ``dscale = g (x - zp)``.

Fake quantization (a QuantizeLinear -> DequantizeLinear pair on a float tensor, the QDQ format)
uses the straight-through estimator. QuantizeLinear on an input (or scale) that needs a
gradient returns a :class:`Quantized`: the exact integer tensor, which every consumer sees as
a constant, carrying what it was computed from. A DequantizeLinear that undoes it exactly (the
same scale, zero point and axis, an integer type, x / scale in x's own float type) is then
computed as one engine op from x, ``F.fake_quantize``: the same values bit for bit, the
gradients below, and a traced graph that exports back to the pair. Any other DequantizeLinear
reads ``twin``, the quantized values as a float tensor built from engine ops::

    t = where(in range, x, 0) / scale;   twin = (t - const(t)) + const(q)

``t - const(t)`` is exactly 0 and ``0 + q`` is ``q``, so the twin holds the integers bit for
bit, while its gradient is that of ``x / scale`` inside the clip range (rounding taken as the
identity) and 0 where the value saturated. DequantizeLinear computes from the twin when it
meets one, ``y = (twin - zp) * scale``, so for a Q -> DQ pair with one scale ``dx = g`` inside
the range and 0 outside (torch.fake_quantize_per_tensor_affine / _per_channel_affine); a scale
that is a Parameter gets ``g ((q - zp) - x / scale)`` inside the range and ``g (qmin - zp)`` or
``g (qmax - zp)`` outside, the LSQ gradient of torch's ``_fake_quantize_learnable_*`` (what
``F.fake_quantize`` computes directly). The twin holds constants computed from x's values, so
a graph that uses it cannot be exported. The source rides on the value itself rather than on
node state, so it reaches every DequantizeLinear fed by that QuantizeLinear (subgraphs
included) and is dropped by any other op: an integer op reading a Quantized (QLinearMatMul,
...) is reported among the ops with no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from onnx import helper

from bpcli import functional as F
from bpcli.engine.ops.quant import quantize_array, spread
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer import minifloat
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.nn import _spatial_check
from bpcli.onnx.importer.ops.nn import conv as conv_importer
from bpcli.onnx.importer.table import NodeView, norm_axis, register, wrap

INT_RANGES = {
    "uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
    "uint4": (0, 15), "int4": (-8, 7), "uint2": (0, 3), "int2": (-2, 1),
}  # fmt: skip
FLOAT_TARGETS = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                 "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"}  # fmt: skip
_WIDE = (np.dtype(np.float32), np.dtype(np.float64))


# -- scale and zero point layout --------------------------------------------------------------


class Layout(NamedTuple):
    """How a scale (and its zero point) spreads over x: per tensor, per axis or per block."""

    kind: str  # "tensor", "axis" or "block"
    axis: int = 0
    size: int = 0  # x.shape[axis]
    block: int = 0


def _layout(node: NodeView, x_shape: tuple, s_shape: tuple) -> Layout:
    if int(np.prod(s_shape, dtype=np.int64)) == 1:
        return Layout("tensor")
    rank, block = len(x_shape), node.attr("block_size", 0)
    axis = norm_axis(node.attr("axis", 1), rank, node)
    n = x_shape[axis]
    if block < 0:
        raise node.fail(f"block_size must be positive, got {block}")
    if block:
        want = tuple(-(-n // block) if i == axis else d for i, d in enumerate(x_shape))
        if tuple(s_shape) != want:
            raise node.fail(f"blocked scale of shape {list(s_shape)} for input {list(x_shape)}, "
                            f"axis {axis}, block_size {block} (expected {list(want)})")  # fmt: skip
        return Layout("block", axis, n, block)
    if len(s_shape) != 1 or s_shape[0] != n:
        raise node.fail(f"scale of shape {list(s_shape)} is neither per tensor nor per axis "
                        f"{axis} of input {list(x_shape)}")  # fmt: skip
    return Layout("axis", axis, n)


def _spread(a: np.ndarray, lay: Layout, ndim: int) -> np.ndarray:
    """``a`` broadcastable against x."""
    return spread(a, ndim, None if lay.kind == "tensor" else lay.axis, lay.block, lay.size)


def _spread_t(t: Tensor, lay: Layout, ndim: int) -> Tensor:
    """``_spread`` on engine ops, for a scale that needs a gradient."""
    if lay.kind == "tensor":
        return F.reshape(t, ())
    if lay.kind == "axis":
        return F.reshape(t, tuple(-1 if i == lay.axis else 1 for i in range(ndim)))
    return F.index_select(t, lay.axis, np.arange(lay.size) // lay.block)


def _as_float(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` in ``dtype``, differentiable when it is a wide float."""
    if t.dtype == dtype:
        return t
    if t.dtype in _WIDE:
        return F.astype(t, dtype)
    return wrap(t.data.astype(np.float32).astype(dtype))


def _dtype_attr(node: NodeView, key: str) -> np.dtype | None:
    code = node.attr(key, 0)
    return np.dtype(helper.tensor_dtype_to_np_dtype(code)) if code else None


# -- QuantizeLinear ---------------------------------------------------------------------------


class Source(NamedTuple):
    """What a QuantizeLinear on a value that needs a gradient read."""

    x: Tensor
    scale: Tensor
    zp: Tensor | None
    lay: Layout
    inside: np.ndarray  # where the value did not saturate (the STE's pass mask)
    qrange: tuple[int, int] | None  # set when F.fake_quantize computes the same integers


class Quantized(Tensor):
    """A QuantizeLinear result: the exact quantized tensor (a constant), ``src`` (what it was
    computed from) and ``twin``, its values as a float tensor whose gradient is the
    straight-through estimate, built on first use."""

    __slots__ = ("_twin", "src")

    def __init__(self, q: np.ndarray, src: Source):
        super().__init__(q)
        self.src, self._twin = src, None

    @property
    def twin(self) -> Tensor:
        if self._twin is None:
            s = self.src
            self._twin = _twin(s.x, s.scale, s.lay, self.data, s.inside)
        return self._twin


def _target(node: NodeView, zp: Tensor | None) -> np.dtype:
    to = _dtype_attr(node, "output_dtype")
    if zp is not None:
        if to is not None and to != zp.dtype:
            raise node.fail(f"output_dtype {to} differs from the zero point's type {zp.dtype}")
        to = zp.dtype
    to = to or np.dtype(np.uint8)
    if to.name not in INT_RANGES and to.name not in FLOAT_TARGETS:
        raise node.fail(f"quantization to {to} is not defined")
    return to


def _precision(node: NodeView, s: np.dtype) -> np.dtype:
    """The type x / scale is computed in: ``precision``, else the scale's float type."""
    dt = _dtype_attr(node, "precision")
    if dt is None:
        if s.name == "float8_e8m0fnu":
            dt = np.dtype(np.float32)  # powers of two: no quotient is representable in it
        elif s.kind in "iu":
            dt = np.dtype(np.float64)  # an int32 scale: divide exactly, round once below
        else:
            dt = s
    if not (dt.kind == "f" or minifloat.is_narrow_float(dt)):
        raise node.fail(f"precision {dt} is not a float type")
    return dt


def _divide(dt: np.dtype, x: np.ndarray, s: np.ndarray) -> np.ndarray:
    return minifloat.widened(np.divide, x.astype(dt), s.astype(dt))


def _saturate(node, v: np.ndarray, z: np.ndarray | None, to: np.dtype):
    """The quantized array, and where the value did not saturate (the STE's pass mask)."""
    if to.name in INT_RANGES:
        q, inside = quantize_array(v, z, *INT_RANGES[to.name])  # F.fake_quantize's core
        return q.astype(to), inside
    w = v.astype(np.float32)
    if z is not None:
        w = w + z.astype(np.float32)
    saturate = bool(node.attr("saturate", 1)) or not to.name.startswith("float8")
    big = minifloat.cast(np.array(np.finfo(np.float32).max, np.float32), to, True)
    return minifloat.cast(w, to, saturate), np.abs(w) <= big.astype(np.float32)


def _twin(x: Tensor, scale: Tensor, lay: Layout, q: np.ndarray, inside: np.ndarray) -> Tensor:
    """``q`` as a float tensor of x's dtype whose gradient is that of ``x / scale`` where
    ``inside`` and 0 elsewhere (the module docstring explains why)."""
    s = _spread_t(_as_float(scale, x.dtype), lay, x.ndim)
    if not s.data.all():  # a zero scale would make 0 / 0 in the masked part
        s = F.where(s.data != 0, s, 1.0)
    t = F.div(F.where(inside, x, 0.0), s)
    return F.add(F.sub(t, wrap(t.data)), wrap(q.astype(x.dtype)))


def _quantize(node, x: Tensor, scale: Tensor, zp: Tensor | None, to: np.dtype) -> Tensor:
    lay = _layout(node, x.shape, scale.shape)
    z = None if zp is None else _spread(zp.data, lay, x.ndim)
    dt = _precision(node, scale.dtype)
    v = _divide(dt, x.data, _spread(scale.data, lay, x.ndim))
    q, inside = _saturate(node, v, z, to)
    if grad(x, scale) and x.dtype in _WIDE:
        # F.fake_quantize divides in x's dtype and rounds to integers: the same q then
        same = to.name in INT_RANGES and x.dtype == scale.dtype == dt
        qrange = INT_RANGES[to.name] if same else None
        return Quantized(q, Source(x, scale, zp, lay, inside, qrange))
    return wrap(q)


@register("QuantizeLinear", since=10)
def quantize_linear(ctx, node: NodeView, inputs):
    x, scale = inputs[0], inputs[1]
    zp = inputs[2] if len(inputs) > 2 else None
    return _quantize(node, x, scale, zp, _target(node, zp))


@register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx, node, inputs):
    """uint8 with scale (max(0, x) - min(0, x)) / 255 and zp = round(-min / scale); NaNs are
    left out of the range and an all-zero (or empty) x gets scale 1, as onnxruntime does. The
    scale is a constant: as the observers of torch's QAT, it takes no gradient."""
    x = inputs[0]
    a = x.data.astype(np.float32).ravel()
    lo = np.float32(np.fmin.reduce(a, initial=np.float32(0)))
    hi = np.float32(np.fmax.reduce(a, initial=np.float32(0)))
    scale = np.float32((hi - lo) / np.float32(255)) if hi > lo else np.float32(1)
    zp = np.uint8(np.clip(np.rint(np.float32(0) - lo / scale), 0, 255))
    y = _quantize(node, x, wrap(scale), wrap(zp), np.dtype(np.uint8))
    return y, wrap(scale), wrap(zp)


# -- DequantizeLinear -------------------------------------------------------------------------


def _output_dtype(node: NodeView, scale: Tensor) -> np.dtype:
    out = _dtype_attr(node, "output_dtype") or scale.dtype
    if out.name not in ("float32", "float16", "bfloat16", "float64"):
        raise node.fail(f"output type {out}: give output_dtype (float, float16 or bfloat16)")
    return out


def _is_int(dtype: np.dtype) -> bool:
    return dtype.kind in "iu" or dtype.name in INT_RANGES


def _exact(a: np.ndarray) -> np.ndarray:
    """Integers as int64, float8/float4 values as float32: both hold every value exactly."""
    return a.astype(np.int64) if _is_int(a.dtype) else a.astype(np.float32)


def _centered(x: np.ndarray, z: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """x - zp, subtracted exactly, then in ``dtype``."""
    return (_exact(x) - (_exact(z) if z is not None else 0)).astype(dtype)


def _values(a: np.ndarray) -> np.ndarray:
    return a if a.dtype in _WIDE else _exact(a)  # _exact would round a float64 scale


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    """One scale or zero point: the same tensor, or equal constants (absent zero points are 0)."""
    if a is b:
        return True
    if grad(a, b) or (a is not None and b is not None and a.dtype != b.dtype):
        return False
    va, vb = (np.zeros((), np.int64) if t is None else _values(t.data) for t in (a, b))
    try:
        return bool(np.all(np.equal(*np.broadcast_arrays(va, vb))))
    except ValueError:  # shapes that do not broadcast
        return False


def _fake_quantize(src: Source, scale, zp, lay: Layout, out: np.dtype) -> Tensor | None:
    """The pair as one ``F.fake_quantize`` of x when this DequantizeLinear undoes src exactly."""
    if src.qrange is None or lay != src.lay or out != src.x.dtype:
        return None
    if not (_same(scale, src.scale) and _same(zp, src.zp)):
        return None
    z = src.zp
    if z is not None and z.dtype.kind not in "iu":  # 4-bit and 2-bit: plain int64 for the op
        z = wrap(_exact(z.data))
    axis = None if lay.kind == "tensor" else lay.axis
    return F.fake_quantize(src.x, src.scale, z, *src.qrange, axis, block_size=lay.block)


@register("DequantizeLinear", since=10)
def dequantize_linear(ctx, node: NodeView, inputs):
    x, scale = inputs[0], inputs[1]
    zp = inputs[2] if len(inputs) > 2 else None
    out = _output_dtype(node, scale)
    cd = out if out in _WIDE else np.dtype(np.float32)  # narrow: float32 product, rounded once
    lay = _layout(node, x.shape, scale.shape)
    z = None if zp is None else _spread(zp.data, lay, x.ndim)
    quant = isinstance(x, Quantized)
    if quant and (y := _fake_quantize(x.src, scale, zp, lay, out)) is not None:
        return y
    if (quant or grad(scale)) and out == cd:
        d = F.astype(x.twin, cd) if quant else wrap(_centered(x.data, z, cd))
        if quant and z is not None:
            d = F.sub(d, wrap(_exact(z).astype(cd)))
        return F.mul(d, _spread_t(_as_float(scale, cd), lay, x.ndim))
    if quant or grad(scale):
        ctx.module._note_nograd(node)  # a narrow output: the engine cannot carry its gradient
    s = _spread(scale.data, lay, x.ndim).astype(np.float32).astype(cd)
    return wrap((_centered(x.data, z, cd) * s).astype(out))


# -- integer matmul and conv ------------------------------------------------------------------


def _ends_gradient(ctx, node: NodeView, *ts) -> None:
    """An integer op reading a fake-quantized value: the straight-through gradient stops."""
    if any(isinstance(t, Quantized) for t in ts):
        ctx.module._note_nograd(node)


def _minus_zp(a: Tensor, zp: Tensor | None, per_row: bool) -> np.ndarray:
    """a - zp exactly (int64, or float64 for float8); a 1-D zero point of A is per row."""
    v = _exact(a.data).astype(np.int64 if _is_int(a.dtype) else np.float64)
    if zp is None:
        return v
    z = _exact(zp.data).astype(v.dtype)
    if per_row and z.ndim == 1 and z.size > 1:
        z = z.reshape(-1, 1)
    return v - z


def _requantize(acc: np.ndarray, m: np.ndarray, zp: Tensor) -> np.ndarray:
    """saturate(round(acc * m) + zp) in the zero point's type; m is a float32 multiplier."""
    v = acc.astype(np.float32) * m
    if zp.dtype.name in INT_RANGES:
        lo, hi = INT_RANGES[zp.dtype.name]
        return np.clip(np.rint(v.astype(np.float64)) + _exact(zp.data), lo, hi).astype(zp.dtype)
    return minifloat.cast(v + _exact(zp.data), zp.dtype, saturate=True)


def _f32(t: Tensor) -> np.ndarray:
    return t.data.astype(np.float32)


@register("MatMulInteger", since=10)
def matmul_integer(ctx, node, inputs):
    a, b = inputs[0], inputs[1]
    azp = inputs[2] if len(inputs) > 2 else None
    bzp = inputs[3] if len(inputs) > 3 else None
    _ends_gradient(ctx, node, a, b)
    acc = np.matmul(_minus_zp(a, azp, True), _minus_zp(b, bzp, False))
    return wrap(acc.astype(np.int32))  # the spec lets a 32-bit accumulation wrap


@register("QLinearMatMul", since=10)
def qlinear_matmul(ctx, node, inputs):
    a, a_s, azp, b, b_s, bzp, y_s, yzp = inputs
    _ends_gradient(ctx, node, a, b)
    acc = np.matmul(_minus_zp(a, azp, True), _minus_zp(b, bzp, False))
    sa = _f32(a_s)
    if sa.ndim == 1 and sa.size > 1:
        sa = sa.reshape(-1, 1)  # per row of a
    return wrap(_requantize(acc, sa * _f32(b_s) / _f32(y_s), yzp))


def _conv_exact(ctx, node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The ONNX Conv of float64 arrays holding integers: exact (sums stay far below 2**53)."""
    args = [wrap(x), wrap(w), None if b is None else wrap(b.astype(np.float64))]
    return conv_importer(ctx, node, args).data


def _per_channel(zp: np.ndarray, ndim: int) -> np.ndarray:
    """A per-output-channel (1-D) weight zero point or scale, broadcastable against w."""
    return zp.reshape(-1, *[1] * (ndim - 1)) if zp.ndim == 1 and zp.size > 1 else zp


@register("ConvInteger", since=10, check=_spatial_check)
def conv_integer(ctx, node, inputs):
    x, w = inputs[0], inputs[1]
    xzp = inputs[2] if len(inputs) > 2 else None
    wzp = inputs[3] if len(inputs) > 3 else None
    _ends_gradient(ctx, node, x, w)
    xc = _minus_zp(x, xzp, False).astype(np.float64)
    wzp = None if wzp is None else wrap(_per_channel(wzp.data, w.ndim))
    acc = _conv_exact(ctx, node, xc, _minus_zp(w, wzp, False).astype(np.float64), None)
    return wrap(acc.astype(np.int64).astype(np.int32))


@register("QLinearConv", since=10, check=_spatial_check)
def qlinear_conv(ctx, node, inputs):
    x, x_s, xzp, w, w_s, wzp, y_s, yzp = inputs[:8]
    bias = inputs[8] if len(inputs) > 8 and inputs[8] is not None else None
    _ends_gradient(ctx, node, x, w)
    xc = _minus_zp(x, xzp, False).astype(np.float64)
    wc = _minus_zp(w, wrap(_per_channel(wzp.data, w.ndim)), False).astype(np.float64)
    acc = _conv_exact(ctx, node, xc, wc, None if bias is None else bias.data)
    ws = _f32(w_s)
    if ws.ndim == 1 and ws.size > 1:
        ws = ws.reshape(-1, *[1] * (x.ndim - 2))  # per output channel, axis 1 of y
    return wrap(_requantize(acc, _f32(x_s) * ws / _f32(y_s), yzp))
