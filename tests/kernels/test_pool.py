"""Pooling kernels against naive numpy references (float32 and float64)."""

import numpy as np
import pytest

from bpcli.kernels.pool import avgpool2d_bwd, avgpool2d_fwd, maxpool2d_bwd, maxpool2d_fwd

# (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow) on an input of (2, 3, 7, 6)
MAX_GEOMS = [
    (2, 2, 2, 2, 0, 0, 1, 1, 3, 3),  # the 2x2 fast path
    (2, 2, 1, 1, 0, 0, 1, 1, 6, 5),
    (3, 3, 2, 2, 1, 1, 1, 1, 4, 3),
    (3, 2, 2, 3, 1, 1, 2, 2, 3, 2),
    (2, 2, 2, 2, 1, 0, 1, 1, 4, 3),
]


def naive_maxpool(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    out = np.full((n, c, oh, ow), -np.inf, x.dtype)
    arg = np.full((n, c, oh, ow), -1, np.int64)
    for y in range(oh):
        for xo in range(ow):
            for i in range(kh):
                for j in range(kw):
                    iy, ix = y * sh - ph + i * dh, xo * sw - pw + j * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        v = x[:, :, iy, ix]
                        better = v > out[:, :, y, xo]
                        out[:, :, y, xo] = np.where(better, v, out[:, :, y, xo])
                        arg[:, :, y, xo] = np.where(better, iy * w + ix, arg[:, :, y, xo])
    return out, arg


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", MAX_GEOMS)
def test_maxpool_fwd_bwd_match_naive(geom, dtype):
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6).astype(dtype)
    out, arg = maxpool2d_fwd(x, *geom)
    want_out, want_arg = naive_maxpool(x, *geom)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(arg, want_arg)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = maxpool2d_bwd(g, arg, 7, 6)
    want = np.zeros((2, 3, 42), dtype)
    for idx in np.ndindex(*g.shape):
        want[idx[0], idx[1], arg[idx]] += g[idx]
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, want.reshape(dx.shape), rtol=1e-6)


def test_maxpool_propagates_nan():
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 1, 0] = np.nan
    out, arg = maxpool2d_fwd(x, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1)
    assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 2


def naive_avgpool(x, kh, kw, sh, sw, ph, pw, oh, ow, cip):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), x.dtype)
    for y in range(oh):
        for xo in range(ow):
            y0, x0 = y * sh - ph, xo * sw - pw
            y1, x1 = min(y0 + kh, h + ph), min(x0 + kw, w + pw)
            size = (y1 - y0) * (x1 - x0)
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
            div = size if cip else (y1 - y0) * (x1 - x0)
            out[:, :, y, xo] = x[:, :, y0:y1, x0:x1].sum(axis=(2, 3)) / div
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize(
    "geom", [(2, 2, 2, 2, 0, 0, 3, 3), (3, 3, 2, 2, 1, 1, 4, 3), (3, 2, 3, 2, 1, 1, 3, 4)]
)
def test_avgpool_fwd_bwd_match_naive(geom, cip, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    out = avgpool2d_fwd(x, *geom, cip)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, naive_avgpool(x, *geom, cip), rtol=1e-5, atol=1e-6)
    # the backward is the adjoint of the forward: <fwd(x), g> == <x, bwd(g)>
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = avgpool2d_bwd(g, 7, 6, *geom[:6], cip)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(float((out * g).sum()), float((x * dx).sum()), rtol=1e-4)
