"""im2col / col2im: the patch copies that turn a 2-D convolution into one BLAS product.

Column layout is ``(C * kh * kw, N, oh, ow)`` with row ``(c * kh + i) * kw + j``, so a group of
channels is a contiguous block of rows and ``W.reshape(O, -1) @ cols.reshape(K, -1)`` gives the
output channel-major, one transpose away from NCHW. Padding is given as the top/left amounts;
the bottom/right amounts follow from ``oh``/``ow`` (positions past the image read as zero),
which is how asymmetric ('same') padding is expressed.

# NOTE: every index in the inner loops is clamped with max(., 0) although it is never
# negative: Numba otherwise emits a negative-index wraparound test per element, which stops
# LLVM from vectorising the copy (measured 5-10x slower).
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def _valid_range(n_out, n_in, stride, offset):
    # The output positions o with 0 <= o * stride + offset < n_in, as [lo, hi).
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if n_in - offset > 0:
        hi = (n_in - offset + stride - 1) // stride
    hi = min(hi, n_out)
    lo = min(lo, hi)
    return max(lo, 0), max(hi, 0)


@kernel
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) float -> cols (C*kh*kw, N, oh, ow) of x's dtype; zero outside the image."""
    n, c, h, w = x.shape
    cols = np.zeros((c * kh * kw, n, oh, ow), dtype=x.dtype)
    for ci in range(c):
        for i in range(kh):
            y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
            for j in range(kw):
                r = (ci * kh + i) * kw + j
                off = j * dw - pw
                x_lo, x_hi = _valid_range(ow, w, sw, off)
                s0 = max(x_lo * sw + off, 0)
                for b in range(n):
                    for y in range(y_lo, y_hi):
                        dst = cols[r, b, y]
                        src = x[b, ci, max(y * sh + i * dh - ph, 0)]
                        if sw == 1:
                            for t in range(x_hi - x_lo):
                                dst[x_lo + t] = src[s0 + t]
                        else:
                            for t in range(x_hi - x_lo):
                                dst[x_lo + t] = src[s0 + t * sw]
    return cols


@kernel
def col2im(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    """cols (C*kh*kw, N, oh, ow) float -> im (N, C, h, w) of cols' dtype; scatter-add of patches."""
    _, n, oh, ow = cols.shape
    im = np.zeros((n, c, h, w), dtype=cols.dtype)
    # NOTE: serial: prange over the batch (race-free) did not pay reliably on 2 shared cores.
    for b in range(n):
        for ci in range(c):
            for i in range(kh):
                y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
                for j in range(kw):
                    r = (ci * kh + i) * kw + j
                    off = j * dw - pw
                    x_lo, x_hi = _valid_range(ow, w, sw, off)
                    s0 = max(x_lo * sw + off, 0)
                    for y in range(y_lo, y_hi):
                        src = cols[r, b, y]
                        dst = im[b, ci, max(y * sh + i * dh - ph, 0)]
                        if sw == 1:
                            for t in range(x_hi - x_lo):
                                dst[s0 + t] += src[x_lo + t]
                        else:
                            for t in range(x_hi - x_lo):
                                dst[s0 + t * sw] += src[x_lo + t]
    return im
