"""grid_sample and affine_grid, as torch.nn.functional's; the ONNX GridSample/AffineGrid
importers call the same code.

grid_sample is one primitive: numpy finds the 2^r (4^r for bicubic) taps of every sampling point
with their weights and the weights' derivatives along each grid component; Numba kernels gather
(forward) and scatter (backward) them. The grid's gradient is zero for nearest, as in torch.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops.linalg import matmul
from bpcli.engine.ops.shape import permute, reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.grid import taps_dot, taps_gather, taps_scatter

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


def _cubic(t, a=-0.75):
    """Keys' cubic weights of the taps -1, 0, 1, 2 at fraction t, and their t-derivatives."""

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1, ((3 * (a + 2)) * d - 2 * (a + 3)) * d

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, (3 * a * d - 10 * a) * d + 8 * a

    (w0, d0), (w1, d1) = far(t + 1), near(t)
    (w2, d2), (w3, d3) = near(1 - t), far(2 - t)
    return np.stack([w0, w1, w2, w3], -1), np.stack([d0, d1, -d2, -d3], -1)


def _grid_axis(u: np.ndarray, size: int, mode: str, pad: str, align: bool):
    """One spatial axis at normalised coordinates u (n, q): tap indices (n, q, k), validity,
    weights and their derivatives with respect to u."""
    dt = u.dtype
    a, lo, hi = ((size - 1) / 2, 0.0, size - 1.0) if align else (size / 2, -0.5, size - 0.5)
    # NOTE: torch's grid_sampler_unnormalize, operation by operation, so ties (a point exactly
    # half-way between two pixels) round as torch's do in float32
    one = dt.type(1)
    x = (u + one) / 2 * dt.type(size - 1) if align else ((u + one) * dt.type(size) - one) / 2
    if mode == "nearest":
        v = np.rint(x)  # half to even, as torch
        if pad != "zeros":
            sign, off = _fold(v, lo, hi, size, pad)
            v = sign * v + off
        idx, valid = _tap(np.trunc(v).astype(np.int64)[..., None], size, pad, lo, hi)
        return idx, valid, np.ones(idx.shape, dt), np.zeros(idx.shape, dt)
    slope = np.full(x.shape, a, dt)
    if pad != "zeros" and mode == "linear":
        # NOTE: cubic folds only its taps, not the point (as torch and onnxruntime; the onnx
        # reference folds both, which differs for border padding)
        sign, off = _fold(x, lo, hi, size, pad)
        x, slope = (sign * x + off).astype(dt), (slope * sign).astype(dt)
    base = np.floor(x)
    t = x - base
    taps = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
    idx, valid = _tap(base.astype(np.int64)[..., None] + np.array(taps), size, pad, lo, hi)
    if mode == "linear":
        w, dw = np.stack([1 - t, t], -1), np.stack([-np.ones_like(t), np.ones_like(t)], -1)
    else:
        w, dw = _cubic(t)
    return idx, valid, w.astype(dt), (dw * slope[..., None]).astype(dt)


def _outer(arrays):  # [(n, q, k_0), (n, q, k_1), ...] -> (n, q, k_0 * k_1 * ...)
    out = arrays[0]
    for b in arrays[1:]:
        out = (out[..., :, None] * b[..., None, :]).reshape(*out.shape[:2], -1)
    return out


class GridSample(Op):
    """y = sum_k W_k(grid) x[idx_k(grid)]; dx = scatter of g W, dgrid = sum_k (g . x_k) dW_k"""

    name, onnx = "grid_sample", "GridSample"

    def forward(self, x, grid, *, mode, padding_mode, align_corners):
        n, c, dims = x.shape[0], x.shape[1], x.shape[2:]
        r, out = len(dims), grid.shape[1:-1]
        q = int(np.prod(out))
        g = np.ascontiguousarray(grid, dtype=x.dtype).reshape(n, q, r)
        flat, valid = np.zeros((n, q, 1), np.int64), np.ones((n, q, 1), bool)
        ws, dws = [], []
        for d in range(r):  # grid components run innermost axis first
            i, v, w, dw = _grid_axis(g[..., r - 1 - d], dims[d], mode, padding_mode,
                                     align_corners)  # fmt: skip
            flat = (flat[..., :, None] * dims[d] + i[..., None, :]).reshape(n, q, -1)
            valid = (valid[..., :, None] & v[..., None, :]).reshape(n, q, -1)
            ws.append(w)
            dws.append(dw)
        self.idx = np.where(valid, flat, -1)
        self.w, self.ws, self.dws = _outer(ws), ws, dws
        self.shape = (x.shape, grid.shape)
        xf = np.ascontiguousarray(x).reshape(n, c, -1)
        return taps_gather(xf, self.idx, self.w).reshape(n, c, *out)

    def backward(self, g):
        (xs, gs), x = self.shape, self.parents[0].numpy()
        n, c = xs[:2]
        g3 = np.ascontiguousarray(g).reshape(n, c, -1)
        dx = dgrid = None
        if self.needs[0]:
            dx = taps_scatter(g3, self.idx, self.w, int(np.prod(xs[2:]))).reshape(xs)
        if self.needs[1] and self.attrs["mode"] != "nearest":
            dots = taps_dot(np.ascontiguousarray(x).reshape(n, c, -1), g3, self.idx)
            r = len(self.ws)
            dgrid = np.empty((n, dots.shape[1], r), dtype=g.dtype)
            for d in range(r):
                parts = [self.dws[e] if e == d else self.ws[e] for e in range(r)]
                dgrid[..., r - 1 - d] = (dots * _outer(parts)).sum(-1)
            dgrid = dgrid.reshape(gs)
        elif self.needs[1]:
            dgrid = np.zeros(gs, dtype=g.dtype)  # nearest: piecewise constant, as torch
        return dx, dgrid


def sample_grid(x: Tensor, grid: Tensor, mode: str, pad: str, align: bool) -> Tensor:
    """Float x (N, C, *dims) sampled at grid (N, *out, r) with mode linear|cubic|nearest, for
    any r (ONNX allows all; torch's grid_sample checks its own limits before calling this)."""
    n, c, out = x.shape[0], x.shape[1], grid.shape[1:-1]
    if 0 in x.shape or 0 in out:
        return const(np.zeros((n, c, *out), x.dtype))
    return GridSample.apply(x, grid, mode=mode, padding_mode=pad, align_corners=bool(align))


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
