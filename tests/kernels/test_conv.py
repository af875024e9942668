"""im2col / col2im against naive numpy references (float32 and float64)."""

import numpy as np
import pytest

from bpcli.kernels.conv import col2im, im2col

# (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow): oh/ow may imply asymmetric padding
GEOMS = [
    (2, 3, 6, 5, 3, 2, 1, 1, 0, 0, 1, 1, 4, 4),
    (1, 2, 7, 7, 3, 3, 2, 3, 1, 2, 1, 1, 4, 3),
    (3, 1, 5, 6, 2, 3, 1, 2, 2, 1, 2, 2, 7, 3),
    (1, 2, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 4, 4),  # 'same'-like: pad only at the end
    (0, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4),  # empty batch
]


def naive_im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    cols = np.zeros((c, kh, kw, n, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            for y in range(oh):
                for xo in range(ow):
                    iy, ix = y * sh - ph + i * dh, xo * sw - pw + j * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        cols[:, i, j, :, y, xo] = x[:, :, iy, ix].T
    return cols.reshape(c * kh * kw, n, oh, ow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMS)
def test_im2col_matches_naive(geom, dtype):
    n, c, h, w, *rest = geom
    x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(dtype)
    got = im2col(x, *rest)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, naive_im2col(x, *rest))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMS)
def test_col2im_is_the_transpose_of_im2col(geom, dtype):
    # <im2col(x), c> == <x, col2im(c)> for random x, c: col2im is the exact adjoint
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geom
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    cols = rng.standard_normal((c * kh * kw, n, oh, ow)).astype(dtype)
    back = col2im(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw)
    assert back.dtype == dtype and back.shape == x.shape
    lhs = float((naive_im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow) * cols).sum())
    rhs = float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


def test_im2col_accepts_non_contiguous_input():
    x = np.asfortranarray(np.random.default_rng(2).standard_normal((2, 2, 5, 5)))
    np.testing.assert_array_equal(
        im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5), naive_im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    )
