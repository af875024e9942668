"""softmax kernels against naive numpy references."""

import numpy as np
import pytest

from bpcli.kernels.softmax import softmax_rows, softmax_xent_fwd_bwd

DTYPES = [np.float32, np.float64]


def _ref_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ref_xent(x, t, w, ignore, s):
    """Naive per-row loss, dloss_i/dx_i and weight[t] from the formula in the docstring."""
    m, c = x.shape
    x = x.astype(np.float64)
    loss, d, wt = np.zeros(m), np.zeros((m, c)), np.zeros(m)
    for i in range(m):
        if t[i] == ignore:
            continue
        logp = x[i] - np.log(np.exp(x[i]).sum())
        q = (s / c) * w.astype(np.float64)
        q[t[i]] += (1 - s) * w[t[i]]
        loss[i] = -(q * logp).sum()
        d[i] = np.exp(logp) * q.sum() - q
        wt[i] = w[t[i]]
    return loss, d, wt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 10), (4, 1000), (0, 3)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows(dtype, shape, log):
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
    got = softmax_rows(x, log)
    want = _ref_softmax(x.astype(np.float64))
    want = np.log(want) if log else want
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_softmax_rows_large_logits_stay_finite():
    x = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    assert np.isfinite(softmax_rows(x, True)).all()
    np.testing.assert_allclose(softmax_rows(x, False), [[1, 0, 0]], atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 4), (64, 10), (8, 1000), (0, 4)])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_xent_fwd_bwd(dtype, shape, smoothing, weighted):
    rng = np.random.default_rng(1)
    m, c = shape
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, c, m)
    t[rng.random(m) < 0.2] = -100
    w = rng.uniform(0.2, 2.0, c).astype(dtype) if weighted else np.ones(c, dtype)
    loss, d, wt = softmax_xent_fwd_bwd(x, t, w, -100, smoothing)
    r_loss, r_d, r_wt = _ref_xent(x, t, w, -100, smoothing)
    assert loss.dtype == d.dtype == wt.dtype == dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, r_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(d, r_d, rtol=tol, atol=tol)
    np.testing.assert_allclose(wt, r_wt, rtol=tol)
