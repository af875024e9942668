"""grid_sample and affine_grid, as torch.nn.functional's; the ONNX GridSample/AffineGrid
importers call the same code.

grid_sample gathers the 2^r (4^r for bicubic) taps of every sampling point at once and weights
them with engine ops computed from the grid, so the grid gets a gradient too (zero for nearest,
as in torch). Tap positions, floors and masks carry no gradient and stay numpy.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.ops.elementwise import add, astype, mul, sub
from bpcli.engine.ops.index import gather, getitem
from bpcli.engine.ops.join import stack
from bpcli.engine.ops.linalg import matmul
from bpcli.engine.ops.reduce import sum as sum_
from bpcli.engine.ops.shape import permute, reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["affine_grid", "grid_sample"]

_MODES = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"}
_PADS = ("zeros", "border", "reflection")


def _fold(v: np.ndarray, lo: float, hi: float, size: int, pad: str):
    """(sign, offset) with fold(v) = sign * v + offset: where an outside coordinate lands."""
    below, above = v < lo, v > hi
    if pad == "border":
        return np.where(below | above, 0, 1), np.where(below | above, np.clip(v, 0, size - 1), 0)
    span = hi - lo
    if span <= 0:  # a single pixel with align_corners: every reflection lands on it
        return np.zeros_like(v), np.full_like(v, lo)
    k = np.floor(np.where(below, lo - v, v - hi) / span)  # whole spans crossed
    odd = k % 2 == 1
    # an even number of crossings mirrors v about the near edge; an odd one shifts it
    sign = np.where(below | above, np.where(odd, 1, -1), 1)
    off_below = np.where(odd, hi - lo + k * span, 2 * lo - k * span)
    off_above = np.where(odd, lo - hi - k * span, 2 * hi + k * span)
    return sign, np.where(below, off_below, np.where(above, off_above, 0))


def _tap(i: np.ndarray, size: int, pad: str, lo: float, hi: float):
    """Integer tap positions -> (index into the axis, 0/1 weight of the tap)."""
    if pad == "reflection":
        sign, off = _fold(i.astype(np.float64), lo, hi, size, pad)
        i = np.trunc(sign * i + off).astype(np.int64)
    valid = (i >= 0) & (i < size) if pad == "zeros" else np.ones(i.shape, bool)
    return np.clip(i, 0, size - 1), valid


def _poly(t, coefs):  # Horner on a tensor, coefficients from the highest power down
    acc = add(mul(t, coefs[0]), coefs[1])
    for c in coefs[2:]:
        acc = add(mul(acc, t), c)
    return acc


def _cubic_taps(t, a=-0.75):
    near, far = [a + 2, -(a + 3), 0.0, 1.0], [a, -5 * a, 8 * a, -4 * a]
    one_t = sub(1.0, t)
    return [_poly(add(t, 1.0), far), _poly(t, near), _poly(one_t, near),
            _poly(add(one_t, 1.0), far)]  # fmt: skip


def _grid_axis(coord, size: int, mode: str, pad: str, align: bool):
    """One spatial axis: tap indices (n, q, k), their 0/1 validity and weights (Tensor|None)."""
    a, lo, hi = ((size - 1) / 2, 0.0, size - 1.0) if align else (size / 2, -0.5, size - 0.5)
    x = add(mul(coord, a), (size - 1) / 2)
    if mode == "nearest":
        v = np.rint(x.numpy())  # half to even, as torch
        if pad != "zeros":
            sign, off = _fold(v, lo, hi, size, pad)
            v = sign * v + off
        idx, valid = _tap(np.trunc(v).astype(np.int64)[..., None], size, pad, lo, hi)
        return idx, valid, None
    if pad != "zeros" and mode == "linear":
        # NOTE: cubic folds only its taps, not the point (as torch and onnxruntime; the onnx
        # reference folds both, which differs for border padding)
        sign, off = _fold(x.numpy(), lo, hi, size, pad)
        if not (np.all(sign == 1) and not off.any()):
            x = add(mul(x, const(sign.astype(x.dtype))), const(off.astype(x.dtype)))
    base = np.floor(x.numpy())
    t = sub(x, const(base))
    taps = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
    idx, valid = _tap(base.astype(np.int64)[..., None] + np.array(taps), size, pad, lo, hi)
    w = [sub(1.0, t), t] if mode == "linear" else _cubic_taps(t)
    return idx, valid, stack(w, axis=-1)


def _outer(a, b, shape):  # (n, q, ka) x (n, q, kb) -> (n, q, ka * kb)
    n, q = shape
    return reshape(mul(reshape(a, (n, q, -1, 1)), reshape(b, (n, q, 1, -1))), (n, q, -1))


def sample_grid(x: Tensor, grid: Tensor, mode: str, pad: str, align: bool) -> Tensor:
    """Float x (N, C, *dims) sampled at grid (N, *out, r) with mode linear|cubic|nearest, for
    any r (ONNX allows all; torch's grid_sample checks its own limits before calling this)."""
    r = x.ndim - 2
    n, c, dims, out = x.shape[0], x.shape[1], x.shape[2:], grid.shape[1:-1]
    q = int(np.prod(out))
    if 0 in x.shape or q == 0:
        return const(np.zeros((n, c, *out), x.dtype))
    g = reshape(grid, (n, q, r))
    flat, valid, w = np.zeros((n, q, 1), np.int64), np.ones((n, q, 1), bool), None
    for d in range(r):  # grid components run innermost axis first
        coord = getitem(g, (slice(None), slice(None), r - 1 - d))
        i, v, wd = _grid_axis(coord, dims[d], mode, pad, align)
        flat = (flat[..., :, None] * dims[d] + i[..., None, :]).reshape(n, q, -1)
        valid = (valid[..., :, None] & v[..., None, :]).reshape(n, q, -1)
        w = wd if w is None else (w if wd is None else _outer(w, wd, (n, q)))
    k = flat.shape[-1]
    weight = const(valid.astype(x.dtype))
    if w is not None:
        w = mul(w, const(valid.astype(w.dtype)))
        weight = w if w.dtype == x.dtype else astype(w, x.dtype)
    xf = reshape(x, (n, c, -1))
    index = np.broadcast_to(flat.reshape(n, 1, q * k), (n, c, q * k))
    vals = reshape(gather(xf, 2, np.ascontiguousarray(index)), (n, c, q, k))
    y = sum_(mul(vals, reshape(weight, (n, 1, q, k))), axis=3)
    return reshape(y, (n, c, *out))


def grid_sample(
    input, grid, mode: str = "bilinear", padding_mode: str = "zeros", align_corners=None
) -> Tensor:
    """Sample input (N, C, H, W) or (N, C, D, H, W) at the normalised [-1, 1] positions of grid
    (N, H_out, W_out, 2) or (N, D_out, H_out, W_out, 3), as torch's (x, i.e. W, first)."""
    x, grid = lift(input), lift(grid)
    opname = "grid_sample"
    if mode not in _MODES:
        raise BpcliError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}", opname)
    if padding_mode not in _PADS:
        raise BpcliError(
            f"padding_mode must be one of {', '.join(_PADS)}, got {padding_mode!r}", opname
        )
    if x.ndim not in (4, 5) or grid.ndim != x.ndim:
        raise BpcliError(
            f"input {x.shape} and grid {grid.shape} must both be 4-D or both 5-D", opname
        )
    r = x.ndim - 2
    if grid.shape[0] != x.shape[0] or grid.shape[-1] != r:
        raise BpcliError(
            f"grid of shape {grid.shape} must be (N={x.shape[0]}, ..., {r}) for input {x.shape}",
            opname,
        )
    if mode == "bicubic" and r != 2:
        raise BpcliError("mode 'bicubic' needs a 4-D input", opname)
    if x.dtype.kind != "f" or grid.dtype != x.dtype:
        raise BpcliError(
            f"input and grid must share one float dtype, got {x.dtype} and {grid.dtype}", opname
        )
    return sample_grid(x, grid, _MODES[mode], padding_mode, bool(align_corners))


def _linspace(size: int, align: bool) -> np.ndarray:
    if size <= 1:
        return np.zeros(size)  # torch's choice for one step, with or without align_corners
    if align:
        return np.linspace(-1.0, 1.0, size)
    return (2 * np.arange(size) + 1) / size - 1


def affine_grid(theta, size, align_corners=None) -> Tensor:
    """Sampling grid (N, *spatial, r) of the affine maps theta (N, r, r+1) for an output of
    ``size`` (N, C, H, W) or (N, C, D, H, W), as torch's."""
    theta = lift(theta)
    size = tuple(int(s) for s in size)
    spatial = size[2:]
    r = len(spatial)
    if r not in (2, 3) or theta.shape != (size[0], r, r + 1):
        raise BpcliError(
            f"theta of shape {theta.shape} does not fit size {size} (needs (N, {r}, {r + 1}) "
            "with a 4-D or 5-D size)",
            "affine_grid",
        )
    if min(spatial) < 1:
        raise BpcliError(f"size {size} must have positive spatial sizes", "affine_grid")
    align = bool(align_corners)
    mesh = np.meshgrid(*[_linspace(s, align) for s in spatial], indexing="ij")
    cols = [m.reshape(-1) for m in mesh[::-1]]  # x (innermost axis) first
    base = np.stack([*cols, np.ones(cols[0].shape)], axis=1).astype(theta.dtype)
    g = matmul(const(base), permute(theta, (0, 2, 1)))  # (P, r+1) @ (N, r+1, r)
    return reshape(g, (size[0], *spatial, r))
