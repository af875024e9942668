"""bpcli/kernels/stats.py against naive numpy references."""

import numpy as np
import pytest

from bpcli.kernels import stats as K

DTYPES = [np.float32, np.float64]
BITS = {np.float32: (np.uint32, 0x7FFFFFFF), np.float64: (np.uint64, 0x7FFFFFFFFFFFFFFF)}
TOL = {np.float32: dict(rtol=1e-6), np.float64: dict(rtol=1e-12)}


def _grad_stats(g, w):
    snap, out = np.full_like(w, np.nan), np.full(6, -1.0)
    u, mask = BITS[g.dtype.type]
    K.grad_weight_stats(g, g.view(u), np.array([mask], u), w, snap, out)
    return out, snap


def _ref(g, w):
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    gmax = float(np.abs(g64).max()) if g.size else 0.0
    return [g64.sum(), (g64 * g64).sum(), gmax, float((g == 0).sum()), (w64 * w64).sum(), g.size]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 16384])
def test_grad_weight_stats(dtype, n):
    rng = np.random.default_rng(n)
    g = (rng.standard_normal(n) * 1e-3).astype(dtype)
    g[: n // 3] = 0
    g[n // 2 : n // 2 + 1] = -5.0  # the largest magnitude is negative
    w = rng.standard_normal(n).astype(dtype)
    out, snap = _grad_stats(g, w)
    np.testing.assert_allclose(out, _ref(g, w), **TOL[dtype], atol=1e-12)
    np.testing.assert_array_equal(snap, w)  # the snapshot is an exact copy


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_weight_stats_nonfinite_and_overflow(dtype):
    w = np.ones(5, dtype)
    big = np.full(4, np.finfo(dtype).max / 2, dtype)  # squares overflow the dtype, not float64
    out, _ = _grad_stats(big, w[:4])
    if dtype is np.float32:
        assert np.isclose(out[1], 4 * float(big[0]) ** 2)
    for bad, want in ((np.inf, np.inf), (-np.inf, np.inf), (np.nan, np.nan)):
        g = np.array([0.5, bad, -2.0, 0.0, 1.0], dtype)
        out, _ = _grad_stats(g, w)
        np.testing.assert_equal(out[2], want)  # max |g| keeps inf and NaN
        assert not np.isfinite(out[1]) and out[3] == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_delta_sq_and_batched_calls(dtype):
    rng = np.random.default_rng(1)
    sizes = (300, 20, 1, 0)
    gs = tuple(rng.standard_normal(n).astype(dtype) for n in sizes)
    ws = tuple(rng.standard_normal(n).astype(dtype) for n in sizes)
    snaps = tuple(np.empty_like(w) for w in ws)
    u, mask = BITS[dtype]
    out = np.full((len(sizes), 7), -1.0)  # a record block: column 6 is delta_sq_all's
    K.grad_weight_stats_all(gs, tuple(g.view(u) for g in gs), np.array([mask], u), ws, snaps,
                            out)  # fmt: skip
    for row, g, w in zip(out, gs, ws, strict=True):
        np.testing.assert_allclose(row[:6], _ref(g, w), **TOL[dtype], atol=1e-12)
    assert (out[:, 6] == -1.0).all()
    moved = tuple(w + dtype(0.01) * rng.standard_normal(w.shape).astype(dtype) for w in ws)
    before = out[:, :6].copy()
    K.delta_sq_all(moved, snaps, out)
    ref = [((m.astype(np.float64) - w.astype(np.float64)) ** 2).sum() for m, w in zip(moved, ws)]
    np.testing.assert_allclose(out[:, 6], ref, rtol=1e-12)
    np.testing.assert_array_equal(out[:, :6], before)  # only its column is written
    assert K.delta_sq(moved[0], snaps[0]) == out[0, 6]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(32, 256, 1), (4, 6, 25), (1, 3, 1), (5, 1, 7)])
def test_unit_activity(dtype, shape):
    rng = np.random.default_rng(len(shape) + shape[1])
    y = rng.standard_normal(shape).astype(dtype)
    y[:, ::2] = np.minimum(y[:, ::2], 0)  # every other unit dead over the batch
    out = np.zeros(4)
    for lo, hi in ((0.0, np.inf), (-0.5, 0.5)):
        K.unit_activity(y, lo, hi, out)
        inside = ((y > lo) & (y < hi)).any(axis=(0, 2))
        assert out[0] == inside.sum() and (out[2], out[3]) == (shape[1], y.size)
        np.testing.assert_allclose(out[1], y.astype(np.float64).sum(), rtol=1e-10, atol=1e-10)
