"""Cases for engine/ops/quant.py: fake_quantize per tensor, per axis and per block.

The oracles are torch.fake_quantize_per_tensor_affine / _per_channel_affine (the
straight-through dx) and torch._fake_quantize_learnable_* (the LSQ scale gradient). Scales are
powers of two, so torch's x * (1 / scale) equals our (and ONNX's) x / scale and both round the
same quotients; ties (x / scale = k + 1/2) are planted to check rounding half to even, except
for the learnable oracles, whose backward rounds x / scale + zp (not x / scale, then + zp).

Finite differences are off where x lies inside the range: the function is piecewise constant
there, so its derivative is 0 and the straight-through gradient is by design not it. The
saturated case checks them: outside the range y = (qmin or qmax - zp) * scale, whose true
derivatives (0 for x, qmin/qmax - zp for the scale) are what the op returns.
"""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli.engine.ops.quant import fake_quantize
from tests.engine.harness import Case

RANGES = [(-128, 127), (0, 255), (-8, 7), (0, 15)]


@st.composite
def quant_args(draw, layout):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = draw(st.integers(-len(shape), len(shape) - 1)) % len(shape)
    block = draw(st.integers(1, 3)) if layout == "block" else 0
    qmin, qmax = draw(st.sampled_from(RANGES))
    return shape, axis, block, qmin, qmax


def _scale_shape(shape, axis, block, layout):
    if layout == "tensor":
        return (1,)
    if layout == "axis":
        return (shape[axis],)
    return tuple(-(-n // block) if i == axis else n for i, n in enumerate(shape))


def _gen(layout, saturated=False, zp_min=None, ties=True):
    """x, scale, zero point and the int64 params (qmin, qmax, axis, block)."""

    def gen(args, dtype, rng):
        shape, axis, block, qmin, qmax = args
        ss = _scale_shape(shape, axis, block, layout)
        s = (2.0 ** rng.integers(-3, 2, ss)).astype(dtype)
        lo = qmin if zp_min is None else max(qmin, zp_min)
        z = rng.integers(lo, qmax + 1, ss)
        se = _spread_np(s, shape, axis, block, layout)
        width = qmax - qmin
        if saturated:  # every x / scale at least 20 steps past the range, either side
            mag = width + 20 + np.abs(rng.standard_normal(shape)) * 10
            x = np.where(rng.random(shape) < 0.5, -mag, mag) * se
        else:  # about a fifth of the values saturate
            x = rng.standard_normal(shape) * (width * 0.4) * se
            if ties:
                x.ravel()[:2] = (np.array([0.5, 2.5]) * se.ravel()[:2])[: x.size]
        params = np.array([qmin, qmax, axis, block], np.int64)
        return [x.astype(dtype), s, z.astype(np.int64), params]

    return gen


def _spread_np(s, shape, axis, block, layout):
    if layout == "tensor":
        return np.broadcast_to(s.reshape(()), shape)
    if layout == "axis":
        return np.broadcast_to(s.reshape([-1 if i == axis else 1 for i in range(len(shape))]),
                               shape)  # fmt: skip
    return np.take(s, np.arange(shape[axis]) // block, axis=axis)


def _ours(layout):
    def run(x, s, z, p):
        qmin, qmax, axis, block = (int(v) for v in p.numpy())
        if layout == "tensor":
            return fake_quantize(x, s, z, qmin, qmax)
        return fake_quantize(x, s, z, qmin, qmax, axis, block_size=block)

    return run


def _per_element(t, x, axis, block, layout):
    """A scale (or zero point) repeated to x's shape, as torch autograd sees it."""
    if layout == "tensor":
        return t.reshape(()).expand(x.shape)
    if layout == "axis":
        shape = [-1 if i == axis else 1 for i in range(x.ndim)]
        return t.reshape(shape).expand(x.shape)
    return t.repeat_interleave(block, dim=axis).narrow(axis, 0, x.shape[axis])


def _lsq_composite(x, s, z, qmin, qmax):
    """The LSQ function as torch autograd expressions: round with a straight-through
    gradient."""
    u = x / s
    r = u + (torch.round(u) - u).detach()
    return (torch.clamp(r + z, qmin, qmax) - z) * s


def _torch(layout, learnable):
    def run(x, s, z, p):
        qmin, qmax, axis, block = (int(v) for v in p)
        if layout == "block":  # torch has no blocks: per-element scales along a flat axis 0
            shape = x.shape
            s, z = _per_element(s, x, axis, block, layout), _per_element(z, x, axis, block, layout)
            x, s, z, axis = x.reshape(-1), s.reshape(-1), z.reshape(-1), 0
            return _one(x, s, z, qmin, qmax, axis, layout, learnable).reshape(shape)
        return _one(x, s, z, qmin, qmax, axis, layout, learnable)

    return run


def _one(x, s, z, qmin, qmax, axis, layout, learnable):
    if learnable and x.dtype == torch.float64:  # torch's learnable kernels: no float64 backward
        se = _per_element(s, x, axis, 0, "tensor" if layout == "tensor" else "axis")
        ze = _per_element(z.to(x.dtype), x, axis, 0, "tensor" if layout == "tensor" else "axis")
        return _lsq_composite(x, se, ze, qmin, qmax)
    if layout == "tensor":
        if learnable:
            return torch._fake_quantize_learnable_per_tensor_affine(
                x, s, z.to(x.dtype), qmin, qmax, 1.0
            )
        return torch.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax)
    if learnable and x.ndim == 1:  # the kernel's scale gradient comes out 0-d for a 1-D x
        return _one(x[:, None], s, z, qmin, qmax, 0, layout, learnable)[:, 0]
    if learnable:
        return torch._fake_quantize_learnable_per_channel_affine(
            x, s, z.to(x.dtype), axis, qmin, qmax, 1.0
        )
    # the scale must be float32 even for float64 x (exact: powers of two)
    return torch.fake_quantize_per_channel_affine(x, s.float(), z.int(), axis, qmin, qmax)


def _case(layout, learnable, saturated=False, zp_min=None):
    tag = "learnable_" if learnable else ""
    tag += "saturated_" if saturated else ""
    return Case(
        "fake_quantize",
        _ours(layout),
        _torch(layout, learnable),
        quant_args(layout),
        gen=_gen(layout, saturated, zp_min, ties=not learnable),
        diff=(True, learnable, False, False),
        tol32=(1e-4, 1e-3),  # the scale gradient sums terms up to |qmax - qmin| in float32
        fd=saturated,  # piecewise constant inside the range: see the module docstring
        noncontig=True,
        id=f"fake_quantize[{tag}per_{layout}]",
        max_examples=8,
    )


CASES = [
    _case("tensor", False),
    _case("axis", False),
    _case("block", False),
    # torch's per-tensor learnable backward truncates a negative zero point toward zero (-3 is
    # taken as -2 outside the range): its oracle gets zero points >= 0
    _case("tensor", True, zp_min=0),
    _case("axis", True),
    _case("block", True),
    _case("axis", True, saturated=True),
]
