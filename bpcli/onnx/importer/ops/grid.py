"""Import of GridSample (opsets 16-22) and AffineGrid (20).

GridSample gathers the 2^r (4^r for cubic) taps of every sampling point at once and weights
them with engine ops computed from the grid, so the grid gets a gradient too (zero for nearest,
as in torch). Tap positions, floors and masks carry no gradient and stay numpy.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.resize import _check, _round_to
from bpcli.onnx.importer.table import NodeView, ints, register, wrap

_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
               "nearest": "nearest"}  # fmt: skip


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
    acc = F.add(F.mul(t, coefs[0]), coefs[1])
    for c in coefs[2:]:
        acc = F.add(F.mul(acc, t), c)
    return acc


def _cubic_taps(t, a=-0.75):
    near, far = [a + 2, -(a + 3), 0.0, 1.0], [a, -5 * a, 8 * a, -4 * a]
    one_t = F.sub(1.0, t)
    return [_poly(F.add(t, 1.0), far), _poly(t, near), _poly(one_t, near),
            _poly(F.add(one_t, 1.0), far)]  # fmt: skip


def _grid_axis(coord, size: int, mode: str, pad: str, align: bool):
    """One spatial axis: tap indices (n, q, k), their 0/1 validity and weights (Tensor|None)."""
    a, lo, hi = ((size - 1) / 2, 0.0, size - 1.0) if align else (size / 2, -0.5, size - 0.5)
    x = F.add(F.mul(coord, a), (size - 1) / 2)
    if mode == "nearest":
        v = np.rint(x.data)  # half to even, as torch
        if pad != "zeros":
            sign, off = _fold(v, lo, hi, size, pad)
            v = sign * v + off
        idx, valid = _tap(np.trunc(v).astype(np.int64)[..., None], size, pad, lo, hi)
        return idx, valid, None
    if pad != "zeros" and mode == "linear":
        # NOTE: cubic folds only its taps, not the point (as torch and onnxruntime; the onnx
        # reference folds both, which differs for border padding)
        sign, off = _fold(x.data, lo, hi, size, pad)
        if not (np.all(sign == 1) and not off.any()):
            x = F.add(F.mul(x, wrap(sign.astype(x.dtype))), wrap(off.astype(x.dtype)))
    base = np.floor(x.data)
    t = F.sub(x, wrap(base))
    taps = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
    idx, valid = _tap(base.astype(np.int64)[..., None] + np.array(taps), size, pad, lo, hi)
    w = [F.sub(1.0, t), t] if mode == "linear" else _cubic_taps(t)
    return idx, valid, F.stack(w, axis=-1)


def _outer(a, b, shape):  # (n, q, ka) x (n, q, kb) -> (n, q, ka * kb)
    n, q = shape
    return F.reshape(F.mul(F.reshape(a, (n, q, -1, 1)), F.reshape(b, (n, q, 1, -1))), (n, q, -1))


@register("GridSample", since=16)
def grid_sample(ctx, node: NodeView, inputs):
    x, grid = inputs
    mode = _check(node, "mode", node.attr("mode", "linear"), tuple(_GRID_MODES))
    mode = _GRID_MODES[mode]
    pad = _check(node, "padding_mode", node.attr("padding_mode", "zeros"),
                 ("zeros", "border", "reflection"))  # fmt: skip
    align = bool(node.attr("align_corners", 0))
    r = x.ndim - 2
    if r < 1 or grid.ndim != r + 2 or grid.shape[-1] != r or grid.shape[0] != x.shape[0]:
        raise node.fail(f"grid of shape {grid.shape} does not fit X of shape {x.shape}")
    if x.dtype.kind != "f":  # integer images: sample in float64, round back
        return _round_to(grid_sample(ctx, node, [wrap(x.data.astype(np.float64)), grid]), x.dtype)
    n, c, dims, out = x.shape[0], x.shape[1], x.shape[2:], grid.shape[1:-1]
    q = int(np.prod(out))
    if 0 in x.shape or q == 0:
        return wrap(np.zeros((n, c, *out), x.dtype))
    g = F.reshape(grid if grad(grid) else wrap(grid.data), (n, q, r))
    flat, valid, w = np.zeros((n, q, 1), np.int64), np.ones((n, q, 1), bool), None
    for d in range(r):  # grid components run innermost axis first
        coord = F.getitem(g, (slice(None), slice(None), r - 1 - d))
        i, v, wd = _grid_axis(coord, dims[d], mode, pad, align)
        flat = (flat[..., :, None] * dims[d] + i[..., None, :]).reshape(n, q, -1)
        valid = (valid[..., :, None] & v[..., None, :]).reshape(n, q, -1)
        w = wd if w is None else (w if wd is None else _outer(w, wd, (n, q)))
    k = flat.shape[-1]
    weight = wrap(valid.astype(x.dtype))
    if w is not None:
        w = F.mul(w, wrap(valid.astype(w.dtype)))
        weight = w if w.dtype == x.dtype else F.astype(w, x.dtype)
    xf = F.reshape(x if grad(x) else wrap(x.data), (n, c, -1))
    index = np.broadcast_to(flat.reshape(n, 1, q * k), (n, c, q * k))
    vals = F.reshape(F.gather(xf, 2, np.ascontiguousarray(index)), (n, c, q, k))
    y = F.sum(F.mul(vals, F.reshape(weight, (n, 1, q, k))), axis=3)
    return F.reshape(y, (n, c, *out))


def _linspace(size: int, align: bool) -> np.ndarray:
    if size <= 1:
        return np.zeros(size)  # torch's choice for one step, with or without align_corners
    if align:
        return np.linspace(-1.0, 1.0, size)
    return (2 * np.arange(size) + 1) / size - 1


@register("AffineGrid", since=20)
def affine_grid(ctx, node, inputs):
    theta, size = inputs[0], ints(inputs[1])
    align = bool(node.attr("align_corners", 0))
    spatial = size[2:]
    r = len(spatial)
    if r not in (2, 3) or theta.shape != (size[0], r, r + 1):
        raise node.fail(f"theta of shape {theta.shape} does not fit size {size}")
    mesh = np.meshgrid(*[_linspace(s, align) for s in spatial], indexing="ij")
    cols = [m.reshape(-1) for m in mesh[::-1]]  # x (innermost axis) first
    base = np.stack([*cols, np.ones(cols[0].shape)], axis=1).astype(theta.dtype)
    g = F.matmul(wrap(base), F.permute(theta, 0, 2, 1))  # (P, r+1) @ (N, r+1, r)
    return F.reshape(g, (size[0], *spatial, r))
