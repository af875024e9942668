"""Max and average pooling over the last three axes of NCDHW arrays, forward and backward.

The 3-D twin of ``kernels/pool.py`` (same window rules, its ``_taps``/``_window`` helpers):
max pooling records the flat ``(z * H + y) * W + x`` index of each window's maximum, as
torch's ``return_indices``, and the backward scatters to it.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel
from bpcli.kernels.pool import _taps, _window


@kernel
def maxpool3d_fwd(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    """x (N, C, D, H, W) float -> (out (N, C, od, oh, ow) x's dtype, argmax int64 same shape)."""
    n, c, d, h, w = x.shape
    out = np.empty((n, c, od, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, od, oh, ow), dtype=np.int64)
    for b in range(n):
        for ci in range(c):
            vol = x[b, ci]
            for z in range(od):
                z0, a_lo, a_hi = _taps(z, sd, pd, kd, dd, d)
                for y in range(oh):
                    y0, i_lo, i_hi = _taps(y, sh, ph, kh, dh, h)
                    for xo in range(ow):
                        x0, j_lo, j_hi = _taps(xo, sw, pw, kw, dw, w)
                        if a_lo >= a_hi or i_lo >= i_hi or j_lo >= j_hi:
                            out[b, ci, z, y, xo] = -np.inf
                            arg[b, ci, z, y, xo] = -1
                            continue
                        best = -np.inf
                        at = -1
                        for a in range(a_lo, a_hi):
                            iz = max(z0 + a * dd, 0)
                            for i in range(i_lo, i_hi):
                                iy = max(y0 + i * dh, 0)
                                row = vol[iz, iy]
                                for j in range(j_lo, j_hi):
                                    ix = max(x0 + j * dw, 0)
                                    v = row[ix]
                                    # NaN wins, as in torch; the first maximum wins a tie
                                    if at < 0 or v > best or v != v:
                                        best = v
                                        at = (iz * h + iy) * w + ix
                        out[b, ci, z, y, xo] = best
                        arg[b, ci, z, y, xo] = at
    return out, arg


@kernel
def pool_scatter_bwd(g, arg, plane):
    """g (N, C, ...) float, arg int64 of g's shape -> dx (N, C, plane) of g's dtype: dx[arg] += g.

    Works for any pooling rank: ``arg`` holds flat per-plane indices (-1: no element).
    """
    n, c = g.shape[0], g.shape[1]
    g2 = g.reshape((n, c, -1))
    a2 = arg.reshape((n, c, -1))
    dx = np.zeros((n, c, plane), dtype=g.dtype)
    for b in range(n):
        for ci in range(c):
            for k in range(g2.shape[2]):
                at = a2[b, ci, k]
                if at >= 0:
                    dx[b, ci, at] += g2[b, ci, k]
    return dx


@kernel
def avgpool3d_fwd(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, od, oh, ow, count_include_pad, divisor):
    """x (N, C, D, H, W) float -> (N, C, od, oh, ow); torch's avg_pool3d divisors (or
    ``divisor`` when > 0, torch's divisor_override)."""
    n, c, d, h, w = x.shape
    out = np.zeros((n, c, od, oh, ow), dtype=x.dtype)
    for z in range(od):
        z0, z1, zsz = _window(z, sd, pd, kd, d)
        for y in range(oh):
            y0, y1, ysz = _window(y, sh, ph, kh, h)
            for xo in range(ow):
                x0, x1, xsz = _window(xo, sw, pw, kw, w)
                div = zsz * ysz * xsz if count_include_pad else (z1 - z0) * (y1 - y0) * (x1 - x0)
                if divisor > 0:
                    div = divisor
                if div <= 0:
                    continue
                scale = 1.0 / div
                for b in range(n):
                    for ci in range(c):
                        acc = 0.0
                        for iz in range(z0, z1):
                            for iy in range(y0, y1):
                                for ix in range(x0, x1):
                                    acc += x[b, ci, iz, iy, ix]
                        out[b, ci, z, y, xo] = acc * scale
    return out


@kernel
def avgpool3d_bwd(g, d, h, w, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, divisor):
    """g (N, C, od, oh, ow) float -> dx (N, C, d, h, w); the transpose of avgpool3d_fwd."""
    n, c, od, oh, ow = g.shape
    dx = np.zeros((n, c, d, h, w), dtype=g.dtype)
    for z in range(od):
        z0, z1, zsz = _window(z, sd, pd, kd, d)
        for y in range(oh):
            y0, y1, ysz = _window(y, sh, ph, kh, h)
            for xo in range(ow):
                x0, x1, xsz = _window(xo, sw, pw, kw, w)
                div = zsz * ysz * xsz if count_include_pad else (z1 - z0) * (y1 - y0) * (x1 - x0)
                if divisor > 0:
                    div = divisor
                if div <= 0:
                    continue
                scale = 1.0 / div
                for b in range(n):
                    for ci in range(c):
                        v = g[b, ci, z, y, xo] * scale
                        for iz in range(z0, z1):
                            for iy in range(y0, y1):
                                for ix in range(x0, x1):
                                    dx[b, ci, iz, iy, ix] += v
    return dx
