"""Max and average pooling over the last two axes of NCHW arrays, forward and backward.

Windows start at ``o * stride - pad`` (top/left pad); the output size is the caller's (it holds
torch's ceil_mode rule). Max pooling records the flat ``y * W + x`` index of each window's
maximum (-1 for a window with no element inside the image), so the backward is a scatter.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def _taps(o, stride, pad, k, d, n_in):
    # The kernel taps t in [lo, hi) of window o that land inside the input.
    start = o * stride - pad
    lo = 0 if start >= 0 else (-start + d - 1) // d
    hi = min(k, (n_in - start + d - 1) // d) if n_in > start else 0
    return start, max(lo, 0), max(hi, lo, 0)


@kernel
def _maxpool_2x2(x, out, arg, sh, sw):
    # NOTE: the common 2x2 window without padding, with the loop bounds known at compile time:
    # a runtime-sized 2x2 loop measured 5x slower.
    n, c, _h, w = x.shape
    _, _, oh, ow = out.shape
    for b in range(n):
        for ci in range(c):
            plane = x[b, ci]
            o_plane = out[b, ci]
            a_plane = arg[b, ci]
            for y in range(oh):
                iy = max(y * sh, 0)
                for xo in range(ow):
                    ix = max(xo * sw, 0)
                    best = plane[iy, ix]
                    at = iy * w + ix
                    for i in range(2):
                        row = plane[iy + i]
                        for j in range(2):
                            v = row[ix + j]
                            if v > best or v != v:
                                best = v
                                at = (iy + i) * w + ix + j
                    o_plane[y, xo] = best
                    a_plane[y, xo] = at


@kernel
def maxpool2d_fwd(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) float -> (out (N, C, oh, ow) x's dtype, argmax (N, C, oh, ow) int64)."""
    n, c, h, w = x.shape
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int64)
    if (
        kh == 2
        and kw == 2
        and ph == 0
        and pw == 0
        and dh == 1
        and dw == 1
        and (oh - 1) * sh + 2 <= h
        and (ow - 1) * sw + 2 <= w
    ):
        _maxpool_2x2(x, out, arg, sh, sw)
        return out, arg
    cols = np.empty((ow, 3), dtype=np.int64)
    for xo in range(ow):
        cols[xo, 0], cols[xo, 1], cols[xo, 2] = _taps(xo, sw, pw, kw, dw, w)
    for b in range(n):
        for ci in range(c):
            plane = x[b, ci]
            o_plane = out[b, ci]
            a_plane = arg[b, ci]
            for y in range(oh):
                y0, i_lo, i_hi = _taps(y, sh, ph, kh, dh, h)
                for xo in range(ow):
                    x0, j_lo, j_hi = cols[xo, 0], cols[xo, 1], cols[xo, 2]
                    if i_lo >= i_hi or j_lo >= j_hi:
                        o_plane[y, xo] = -np.inf
                        a_plane[y, xo] = -1
                        continue
                    iy = max(y0 + i_lo * dh, 0)
                    ix = max(x0 + j_lo * dw, 0)
                    best = plane[iy, ix]
                    at = iy * w + ix
                    for i in range(i_lo, i_hi):
                        iy = max(y0 + i * dh, 0)
                        row = plane[iy]
                        for j in range(j_lo, j_hi):
                            ix = max(x0 + j * dw, 0)
                            v = row[ix]
                            # NaN wins, as in torch, so a NaN input is not silently hidden.
                            if v > best or v != v:
                                best = v
                                at = iy * w + ix
                    o_plane[y, xo] = best
                    a_plane[y, xo] = at
    return out, arg


@kernel
def maxpool2d_bwd(g, arg, h, w):
    """g (N, C, oh, ow) float, argmax int64 -> dx (N, C, h, w) of g's dtype (scatter-add)."""
    n, c, oh, ow = g.shape
    dx = np.zeros((n, c, h * w), dtype=g.dtype)
    for b in range(n):
        for ci in range(c):
            for y in range(oh):
                for xo in range(ow):
                    at = arg[b, ci, y, xo]
                    if at >= 0:
                        dx[b, ci, at] += g[b, ci, y, xo]
    return dx.reshape((n, c, h, w))


@kernel
def _window(o, stride, pad, k, n_in):
    # torch's avg_pool bounds: the divisor counts padding but not the ceil_mode overhang.
    start = o * stride - pad
    end = min(start + k, n_in + pad)
    size = end - start
    return max(start, 0), min(end, n_in), size


@kernel
def _avg_cell(y, xo, kh, kw, sh, sw, ph, pw, h, w, count_include_pad):
    # One output cell's input rows/cols and 1/divisor (0 for a window wholly outside).
    y0, y1, ysz = _window(y, sh, ph, kh, h)
    x0, x1, xsz = _window(xo, sw, pw, kw, w)
    div = ysz * xsz if count_include_pad else (y1 - y0) * (x1 - x0)
    return y0, y1, x0, x1, (1.0 / div if div > 0 else 0.0)


@kernel
def avgpool2d_fwd(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
    """x (N, C, H, W) float -> (N, C, oh, ow) of x's dtype; torch's avg_pool2d divisors."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for y in range(oh):
        for xo in range(ow):
            y0, y1, x0, x1, scale = _avg_cell(
                y, xo, kh, kw, sh, sw, ph, pw, h, w, count_include_pad
            )
            if scale == 0.0:
                continue
            for b in range(n):
                for ci in range(c):
                    acc = 0.0
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            acc += x[b, ci, iy, ix]
                    out[b, ci, y, xo] = acc * scale
    return out


@kernel
def avgpool2d_bwd(g, h, w, kh, kw, sh, sw, ph, pw, count_include_pad):
    """g (N, C, oh, ow) float -> dx (N, C, h, w) of g's dtype; the transpose of avgpool2d_fwd."""
    n, c, oh, ow = g.shape
    dx = np.zeros((n, c, h, w), dtype=g.dtype)
    for y in range(oh):
        for xo in range(ow):
            y0, y1, x0, x1, scale = _avg_cell(
                y, xo, kh, kw, sh, sw, ph, pw, h, w, count_include_pad
            )
            if scale == 0.0:
                continue
            for b in range(n):
                for ci in range(c):
                    v = g[b, ci, y, xo] * scale
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            dx[b, ci, iy, ix] += v
    return dx
