"""bpcli/kernels/activation.py against naive math/numpy references."""

import math

import numpy as np
import pytest

from bpcli.kernels import activation as K

TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-15)}
SPECIAL = [0.0, -0.0, 1e-30, -1e-7, 0.5, -0.5, 1.0, 3.999, 4.0, 4.5, -6.0, 10.0, -30.0, 80.0]


def _inputs(dtype, n, seed=0):
    rng = np.random.default_rng(seed + n)
    x = rng.standard_normal(n) * 2.5
    x[: min(n, len(SPECIAL))] = SPECIAL[: min(n, len(SPECIAL))]
    return x.astype(dtype), rng.standard_normal(n).astype(dtype)


def _ref_erf(x):
    return np.array([math.erf(v) for v in x.astype(np.float64)])


def _ref_gelu(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + _ref_erf(x / math.sqrt(2)))


def _ref_gelu_bwd(x, g):
    x = x.astype(np.float64)
    cdf = 0.5 * (1 + _ref_erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return g.astype(np.float64) * (cdf + x * pdf)


DTYPES = [np.float32, np.float64]
SIZES = [0, 1, 7, 33, 1000]  # odd lengths reach the scalar tail after the SIMD loop


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_erf_fwd(dtype, n):
    x, _ = _inputs(dtype, n)
    y = K.erf_fwd(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, _ref_erf(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_gelu_fwd(dtype, n):
    x, _ = _inputs(dtype, n)
    y = K.gelu_fwd(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, _ref_gelu(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_gelu_bwd(dtype, n):
    x, g = _inputs(dtype, n)
    e = np.exp(x * x * dtype(-0.5))
    dx = K.gelu_bwd(x, e, g)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, _ref_gelu_bwd(x, g), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_propagate(dtype):
    x = np.array([np.nan, np.inf, -np.inf], dtype)
    np.testing.assert_array_equal(K.erf_fwd(x), [np.nan, 1, -1])
    np.testing.assert_array_equal(K.gelu_fwd(x[:1]), [np.nan])
    assert K.gelu_fwd(x[1:2])[0] == np.inf


def test_erf_is_odd_bounded_and_nearly_monotone_float32():
    x = np.linspace(0, 5, 20001, dtype=np.float32)
    y = K.erf_fwd(x)
    np.testing.assert_array_equal(K.erf_fwd(-x), -y)
    assert np.all(np.abs(y) <= 1) and y[-1] == 1
    assert np.all(np.diff(y) >= -4e-7)  # within the fit's error bound
