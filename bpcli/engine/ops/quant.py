"""Fake quantization: x rounded onto an integer grid and back, trained with the straight-through
estimator (ONNX's QuantizeLinear -> DequantizeLinear pair, torch.fake_quantize_*).

    q = clip(round_half_even(x / scale) + zp, qmin, qmax);   y = (q - zp) * scale

One scale (and zero point) per tensor, per index of ``axis``, or per block of ``block_size``
consecutive indices of ``axis`` (the scale then has x's rank). The quotient is taken in x's
dtype as ONNX asks (not x * (1 / scale)); rounding and the zero point in float64, exact for
ranges up to 16 bits; a NaN quantizes to 0, as onnxruntime does. ``quantize_array`` is that
integer core, which the ONNX importer shares.

Gradients: ``dx = g`` where ``round(x / scale) + zp`` lies in [qmin, qmax], 0 where it
saturated (torch.fake_quantize_per_tensor_affine / _per_channel_affine); ``dscale`` is the LSQ
gradient of torch's ``_fake_quantize_learnable_*``, ``g ((q - zp) - x / scale)`` inside the
range and ``g (q - zp)`` (that is qmin - zp or qmax - zp) outside, summed over what each scale
covers. The zero point, an integer, gets no gradient.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["fake_quantize"]


def quantize_array(v: np.ndarray, zp: np.ndarray | None, qmin: int, qmax: int):
    """``(q, inside)``: ``clip(round_half_even(v) + zp, qmin, qmax)`` as int64 (NaN gives 0)
    and where the unclipped value lay in [qmin, qmax]; ``zp`` (integers) broadcasts against v."""
    r = np.rint(v.astype(np.float64))  # round v first, then add the zero point (as ONNX)
    if zp is not None:
        r = r + zp.astype(np.int64)
    inside = (r >= qmin) & (r <= qmax)
    r = np.where(np.isnan(r), 0.0, r)  # NaN quantizes to 0, as onnxruntime does
    return np.clip(r, qmin, qmax).astype(np.int64), inside


def spread(a: np.ndarray, ndim: int, axis: int | None, block: int, size: int) -> np.ndarray:
    """A scale or zero point broadcastable against x (rank ``ndim``, ``size`` = x.shape[axis]):
    per tensor when ``axis`` is None, per axis when ``block`` is 0, else repeated per block."""
    if axis is None:
        return a.reshape(())
    if not block:
        return a.reshape([-1 if i == axis else 1 for i in range(ndim)])
    return np.take(a, np.arange(size) // block, axis=axis)


def _sum_to_scale(e: np.ndarray, shape: tuple, axis: int | None, block: int) -> np.ndarray:
    """Per-element scale gradients summed over what each scale covers."""
    if axis is None:
        return e.sum().reshape(shape)
    if not block:
        return e.sum(axis=tuple(i for i in range(e.ndim) if i != axis)).reshape(shape)
    if e.shape[axis] == 0:
        return np.zeros(shape, e.dtype)
    return np.add.reduceat(e, np.arange(0, e.shape[axis], block), axis=axis)


class FakeQuantize(Op):
    """y = (clip(round(x / s) + zp, qmin, qmax) - zp) s; dx = g where round(x / s) + zp is in
    [qmin, qmax] else 0; ds = sum g ((q - zp) - x / s) inside, g (q - zp) outside (LSQ)"""

    name, onnx, saves_inputs = "fake_quantize", "QuantizeLinear", False

    def forward(self, x, scale, zero_point, qmin, qmax, axis, block_size):
        n = x.shape[axis] if axis is not None else 0
        s = spread(scale, x.ndim, axis, block_size, n)
        z = spread(zero_point, x.ndim, axis, block_size, n)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero scale saturates
            v = np.asarray(x / s)
        q, self.inside = quantize_array(v, z, qmin, qmax)
        self.c = (q - z.astype(np.int64)).astype(x.dtype)  # q - zp: exact integers
        self.v, self.scale_shape = v, scale.shape
        return np.asarray(self.c * s)

    def backward(self, g):
        dx = ds = None
        if self.needs[0]:
            dx = g * self.inside
        if self.needs[1]:
            lsq = self.c - np.where(self.inside, self.v, 0)  # (q - zp) - x / s inside
            a = self.attrs
            ds = _sum_to_scale(g * lsq, self.scale_shape, a["axis"], a["block_size"])
        return dx, ds, None


def _check_layout(x: Tensor, scale: Tensor, axis: int | None, block: int) -> int | None:
    """The normalized axis, once the scale's shape fits the per-tensor/axis/block layout."""
    where = "fake_quantize"
    if axis is None:
        if scale.numel() != 1 or block:
            raise BpcliError(f"a scale of shape {scale.shape} needs an axis (per-tensor scales "
                             "have one element)", where)  # fmt: skip
        return None
    axis = norm_axis(axis, x.ndim, where)
    n = x.shape[axis]
    if block < 0:
        raise BpcliError(f"block_size must be positive, got {block}", where)
    if block:
        want = tuple(-(-n // block) if i == axis else d for i, d in enumerate(x.shape))
    else:
        want = (n,)
    if scale.shape != want:
        raise BpcliError(f"scale of shape {scale.shape} for input {x.shape}, axis {axis}, "
                         f"block_size {block} (expected {want})", where)  # fmt: skip
    return axis


def _zero_point(zero_point, scale: Tensor) -> Tensor:
    z = lift(0 if zero_point is None else zero_point)
    if z.dtype.kind == "f":
        zd = z.data
        if not np.all(np.isfinite(zd) & (zd == np.rint(zd))):
            raise BpcliError("the zero point must hold integers", "fake_quantize")
    elif z.dtype.kind not in "iu":
        raise BpcliError(f"the zero point must be integer, got {z.dtype}", "fake_quantize")
    if z.shape == scale.shape:
        return z
    if z.numel() == 1:  # one zero point for every scale
        return const(np.broadcast_to(z.data.reshape(()), scale.shape).copy())
    raise BpcliError(f"zero point of shape {z.shape} for a scale of shape {scale.shape}",
                     "fake_quantize")  # fmt: skip


def fake_quantize(x, scale, zero_point, qmin: int, qmax: int, axis: int | None = None, *,
                  block_size: int = 0) -> Tensor:  # fmt: skip
    """``x`` quantized to the integers [qmin, qmax] and back, ``(q - zero_point) * scale``.

    ``axis=None`` takes one scale and zero point for the whole tensor (as
    ``torch.fake_quantize_per_tensor_affine``); with ``axis`` the scale has one entry per index
    of that axis (``torch.fake_quantize_per_channel_affine``), or, with ``block_size``, one
    per block of that many indices (the scale has x's rank). ``zero_point`` holds integers (a
    single one serves every scale). The gradient passes straight through where x was not
    clipped; a scale that needs a gradient gets the LSQ one (see the module docstring).
    """
    x = lift(x)
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float tensor, got {x.dtype}", "fake_quantize")
    scale = lift(scale, like=x)
    if scale.dtype != x.dtype:
        raise BpcliError(f"scale of dtype {scale.dtype} for input of {x.dtype}: cast one side "
                         "with .astype()", "fake_quantize")  # fmt: skip
    if int(qmin) != qmin or int(qmax) != qmax or qmin > qmax:
        raise BpcliError(f"qmin {qmin}, qmax {qmax}: need integers with qmin <= qmax",
                         "fake_quantize")  # fmt: skip
    axis = _check_layout(x, scale, axis, int(block_size))
    z = _zero_point(zero_point, scale)
    return FakeQuantize.apply(x, scale, z, qmin=int(qmin), qmax=int(qmax), axis=axis,
                              block_size=int(block_size) if axis is not None else 0)  # fmt: skip
