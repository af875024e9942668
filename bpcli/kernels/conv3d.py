"""im2col3d / col2im3d: the patch copies that turn a 3-D convolution into one BLAS product.

The 3-D twin of ``kernels/conv.py``, same conventions: columns are ``(C*kd*kh*kw, N, od, oh, ow)``
with row ``((c * kd + a) * kh + i) * kw + j`` (a group of channels is a contiguous row block);
padding is the front/top/left amounts, the far ends follow from the output size.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel
from bpcli.kernels.conv import _valid_range


@kernel
def im2col3d(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    """x (N, C, D, H, W) float -> cols (C*kd*kh*kw, N, od, oh, ow) of x's dtype; zero outside."""
    n, c, d, h, w = x.shape
    cols = np.zeros((c * kd * kh * kw, n, od, oh, ow), dtype=x.dtype)
    for ci in range(c):
        for a in range(kd):
            z_lo, z_hi = _valid_range(od, d, sd, a * dd - pd)
            for i in range(kh):
                y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
                for j in range(kw):
                    r = ((ci * kd + a) * kh + i) * kw + j
                    off = j * dw - pw
                    x_lo, x_hi = _valid_range(ow, w, sw, off)
                    s0 = max(x_lo * sw + off, 0)
                    for b in range(n):
                        for z in range(z_lo, z_hi):
                            iz = max(z * sd + a * dd - pd, 0)
                            for y in range(y_lo, y_hi):
                                dst = cols[r, b, z, y]
                                src = x[b, ci, iz, max(y * sh + i * dh - ph, 0)]
                                for t in range(x_hi - x_lo):
                                    dst[x_lo + t] = src[s0 + t * sw]
    return cols


@kernel
def col2im3d(cols, c, d, h, w, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """cols (C*kd*kh*kw, N, od, oh, ow) float -> im (N, C, d, h, w); scatter-add of patches."""
    _, n, od, oh, ow = cols.shape
    im = np.zeros((n, c, d, h, w), dtype=cols.dtype)
    for b in range(n):
        for ci in range(c):
            for a in range(kd):
                z_lo, z_hi = _valid_range(od, d, sd, a * dd - pd)
                for i in range(kh):
                    y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
                    for j in range(kw):
                        r = ((ci * kd + a) * kh + i) * kw + j
                        off = j * dw - pw
                        x_lo, x_hi = _valid_range(ow, w, sw, off)
                        s0 = max(x_lo * sw + off, 0)
                        for z in range(z_lo, z_hi):
                            iz = max(z * sd + a * dd - pd, 0)
                            for y in range(y_lo, y_hi):
                                src = cols[r, b, z, y]
                                dst = im[b, ci, iz, max(y * sh + i * dh - ph, 0)]
                                for t in range(x_hi - x_lo):
                                    dst[s0 + t * sw] += src[x_lo + t]
    return im
