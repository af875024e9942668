"""bpcli/kernels/dropout.py against a naive numpy SplitMix64, float32 and float64."""

import numpy as np
import pytest

from bpcli.kernels import dropout as K

DTYPES = [np.float32, np.float64]


def _ref_keep(n, seed, threshold):
    # numpy's uint64 array arithmetic wraps modulo 2**64, as the kernel's does.
    z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(32)) >= np.uint64(threshold)


def _args(p, seed):
    return np.uint64(seed), np.uint64(min(round(p * 2**32), 2**32))


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
@pytest.mark.parametrize("seed", [0, 12345, 2**63 + 11])
def test_keep_matches_reference(n, seed):
    s, t = _args(0.3, seed)
    np.testing.assert_array_equal(K.dropout_keep(n, s, t), _ref_keep(n, s, t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_fwd_bwd_match_reference(dtype, p):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(513).astype(dtype)
    g = rng.standard_normal(513).astype(dtype)
    scale = dtype(0.0 if p >= 1 else 1 / (1 - p))
    s, t = _args(p, 99)
    y, keep = K.dropout_fwd(x, s, t, scale)
    ref = _ref_keep(x.size, s, t)
    np.testing.assert_array_equal(keep, ref)
    assert y.dtype == dtype and keep.dtype == np.bool_
    np.testing.assert_array_equal(y, x * ref * scale)
    dx = K.dropout_bwd(g, keep, scale)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, g * ref * scale)
    if p == 0.0:
        assert keep.all()
    if p == 1.0:
        assert not keep.any()


def test_keep_rate_and_independence():
    keep = K.dropout_keep(200_000, *_args(0.1, 7))
    assert abs(keep.mean() - 0.9) < 0.005
    pairs = (keep[1:] & keep[:-1]).mean()  # neighbours independent: P = 0.81
    assert abs(pairs - 0.81) < 0.005
    assert (K.dropout_keep(1000, *_args(0.5, 8)) != K.dropout_keep(1000, *_args(0.5, 9))).any()


def test_nan_propagates_where_dropped():
    x = np.full(64, np.nan, np.float32)
    y, keep = K.dropout_fwd(x, *_args(0.5, 3), np.float32(2.0))
    assert not keep.all() and np.isnan(y).all()
