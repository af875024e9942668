"""bpcli/kernels/softmax.py's softmax_rows_bwd against numpy, float32 and float64."""

import numpy as np
import pytest

from bpcli.kernels.softmax import softmax_rows_bwd


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("m", "c"), [(1, 1), (3, 7), (64, 64), (0, 5)])
def test_softmax_rows_bwd(m, c, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, c))
    y = np.exp(x - x.max(axis=1, keepdims=True)) if m else x
    y = (y / y.sum(axis=1, keepdims=True)).astype(dtype) if m else y.astype(dtype)
    g = rng.standard_normal((m, c)).astype(dtype)
    y64, g64 = y.astype(np.float64), g.astype(np.float64)
    ref = y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True))
    dx = softmax_rows_bwd(y, g)
    assert dx.dtype == dtype and dx.shape == (m, c)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(dx, ref, **tol)


def test_softmax_rows_bwd_propagates_nan():
    y = np.full((2, 4), 0.25, np.float32)
    g = np.zeros((2, 4), np.float32)
    g[0, 1] = np.nan
    dx = softmax_rows_bwd(y, g)
    assert np.isnan(dx[0]).all() and not np.isnan(dx[1]).any()
