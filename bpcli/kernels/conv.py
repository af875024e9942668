"""im2col / col2im: the patch copies that turn a 2-D convolution into one BLAS product.

Column layout is ``(C * kh * kw, N, oh, ow)`` with the row index ``(c * kh + i) * kw + j``, so
a group of channels is a contiguous block of rows and ``W.reshape(O, -1) @ cols.reshape(K, -1)``
yields the output channel-major, ready for one transpose to NCHW. Padding is given as the
top/left amounts; the bottom/right amounts are implied by ``oh``/``ow`` (positions past the
image read as zero), which is how asymmetric ('same') padding is expressed.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel, prange


@kernel
def _valid_range(n_out, n_in, stride, offset):
    # Output positions o with 0 <= o * stride + offset < n_in, as [lo, hi).
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if n_in - offset > 0:
        hi = (n_in - offset + stride - 1) // stride
    hi = min(hi, n_out)
    lo = min(lo, hi)
    return lo, hi


@kernel
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) float -> cols (C*kh*kw, N, oh, ow) of x's dtype; zero outside the image."""
    n, c, h, w = x.shape
    cols = np.empty((c * kh * kw, n, oh, ow), dtype=x.dtype)
    for r in range(c * kh * kw):
        ci = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
        x_lo, x_hi = _valid_range(ow, w, sw, j * dw - pw)
        for b in range(n):
            for y in range(oh):
                if y < y_lo or y >= y_hi:
                    cols[r, b, y, :] = 0
                    continue
                iy = y * sh + i * dh - ph
                cols[r, b, y, :x_lo] = 0
                for xo in range(x_lo, x_hi):
                    cols[r, b, y, xo] = x[b, ci, iy, xo * sw + j * dw - pw]
                cols[r, b, y, x_hi:] = 0
    return cols


@kernel(parallel=True)
def col2im(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    """cols (C*kh*kw, N, oh, ow) float -> im (N, C, h, w) of cols' dtype; scatter-add of patches."""
    _, n, oh, ow = cols.shape
    im = np.zeros((n, c, h, w), dtype=cols.dtype)
    # NOTE: parallel over the batch: each sample writes only its own image, so no races.
    for b in prange(n):
        for r in range(c * kh * kw):
            ci = r // (kh * kw)
            i = (r // kw) % kh
            j = r % kw
            y_lo, y_hi = _valid_range(oh, h, sh, i * dh - ph)
            x_lo, x_hi = _valid_range(ow, w, sw, j * dw - pw)
            for y in range(y_lo, y_hi):
                iy = y * sh + i * dh - ph
                for xo in range(x_lo, x_hi):
                    im[b, ci, iy, xo * sw + j * dw - pw] += cols[r, b, y, xo]
    return im
