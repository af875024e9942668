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
    K.grad_weight_stats(g, np.array([mask], u), w, snap, out)
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
    scratch = np.zeros((len(sizes), 7))
    K.grad_weight_stats_all(gs, np.array([mask], u), ws, snaps, out, scratch)
    for row, g, w in zip(out, gs, ws, strict=True):
        np.testing.assert_allclose(row[:6], _ref(g, w), **TOL[dtype], atol=1e-12)
    assert (out[:, 6] == -1.0).all() and (scratch[:, :6] == 0).all()
    moved = tuple(w + dtype(0.01) * rng.standard_normal(w.shape).astype(dtype) for w in ws)
    before = out[:, :6].copy()
    K.delta_sq_all(moved, snaps, out)
    ref = [((m.astype(np.float64) - w.astype(np.float64)) ** 2).sum() for m, w in zip(moved, ws)]
    np.testing.assert_allclose(out[:, 6], ref, rtol=1e-12)
    np.testing.assert_array_equal(out[:, :6], before)  # only its column is written
    assert K.delta_sq(moved[0], snaps[0]) == out[0, 6]
    # the next check point's pass measures the update as it snapshots the weights again
    nxt = np.full((len(sizes), 7), -1.0)
    K.grad_weight_stats_all(gs, np.array([mask], u), moved, snaps, nxt, out)
    np.testing.assert_allclose(out[:, 6], ref, rtol=1e-12)
    np.testing.assert_array_equal(out[:, :6], before)
    assert all((s == m).all() for s, m in zip(snaps, moved))


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


def test_derive_rows():
    rng = np.random.default_rng(4)
    n, k, a = 6, 3, 2
    g = [rng.standard_normal(m) for m in (5, 3, 0)]
    w0 = [rng.standard_normal(x.size) for x in g]
    w0[1][:] = 0.0  # a zero weight norm: no update ratio
    w1 = [x + 0.01 for x in w0]
    params = np.array([[[x.sum(), (x * x).sum(), np.abs(x).max(initial=0.0), (x == 0).sum(),
                         (v * v).sum(), x.size, ((u - v) ** 2).sum()]
                        for x, v, u in zip(g, w0, w1)]] * n)  # fmt: skip
    params[1, 0, 1] = np.inf  # a non-finite gradient
    y = [np.maximum(rng.standard_normal((4, 5)), 0), np.zeros((0, 5))]
    acts = np.array([[[(y0 > 0).any(axis=0).sum(), y0.sum(), 5.0, y0.size] for y0 in y]] * n)
    acts[2, 0] = np.nan  # not observed
    head = np.array([[1.0, i + 1.0, 0.1, float(i != 3), np.nan] for i in range(n)])
    out = np.empty((n, 4 + 7 * k + 3 * a))
    K.derive_rows(head, params, acts, out)
    for r in range(n):
        assert out[r, :3].tolist() == head[r, :3].tolist()
        np.testing.assert_allclose(out[r, 3], np.sqrt(params[r, :, 1].sum()), rtol=1e-12)
        for p, (x, v, u) in enumerate(zip(g, w0, w1)):
            ss = params[r, p, 1]
            ratio = np.linalg.norm(u - v) / np.linalg.norm(v) if r != 3 and p == 0 else np.nan
            want = [np.sqrt(ss), x.mean() if x.size else 0.0,
                    (x.std() if np.isfinite(ss) else np.inf) if x.size else 0.0,
                    np.abs(x).max(initial=0.0), (x == 0).mean() if x.size else 1.0,
                    np.linalg.norm(v), ratio]  # fmt: skip
            np.testing.assert_allclose(out[r, 4 + 7 * p : 11 + 7 * p], want, rtol=1e-9, atol=1e-12)
        o = 4 + 7 * k
        if r == 2:
            assert np.isnan(out[r, o : o + 2]).all() and out[r, o + 2] == 0.0
        else:
            np.testing.assert_allclose(out[r, o : o + 3], [5.0, 1 - acts[r, 0, 0] / 5, y[0].mean()])
        assert out[r, o + 3] == 5.0 and np.isnan(out[r, o + 4]) and out[r, o + 5] == 0.0


def test_format_rows_writes_what_percent_9g_does():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(3000) * 10.0 ** rng.uniform(-14, 14, 3000)
    x[1000:2000] = x[1000:2000].astype(np.float32)
    x = np.concatenate([x, [0.0, -0.0, 1.0, 1e9, 999999999.6, 1e-5, 1e-4, 0.5, 1e-290, 1e290]])
    vals = np.stack([x, np.round(np.abs(x) % 1000), np.full(x.size, np.nan)], axis=1)
    vals[-1, 0] = 1e-300  # out of range: the row is left to json
    segs = np.frombuffer(b"[a%,b,c]", np.uint8).copy()
    seg_at = np.array([0, 1, 4, 6, 8])
    good = np.ones(len(x), bool)
    good[3] = False
    buf = np.empty(len(x) * 80, np.uint8)
    end = K.format_rows(vals, good, segs, seg_at, np.array([False, True, False]),
                        10.0 ** np.arange(-308, 309), buf)  # fmt: skip
    lines = buf[:end].tobytes().decode("ascii").split("\n")
    assert len(lines) == len(x) + 1 and lines[-1] == "" and lines[3] == "" and lines[-2] == ""
    assert not good[3] and not good[-1] and good[:3].all() and good[4:-1].all()
    for line, (v, i, _) in zip(lines[:-2], vals[:-1]):
        if line:  # -0.0 is written 0
            want = (f"[{v:.9g}" if v else "[0") + f"a%,{int(i)}"  # "%.9g", "%d"
            assert line == want + "b,nullc]"
    f32 = np.array([float(line[1 : line.index("a")]) for line in lines[1000:2000]])
    assert (f32.astype(np.float32) == x[1000:2000].astype(np.float32)).all()


def _check_rows_ref(vals, bptt, has_ratio, lim, weights, dead, sat, ratio_cols, share_cols):
    """The numpy code check_rows replaced (Record.calm and Record.lines before it)."""
    ok = np.isfinite(vals)
    ok[:, ratio_cols] |= ~has_ratio
    ok[:, share_cols] |= vals[:, share_cols] != vals[:, share_cols]
    good = ok.all(axis=1) & np.isnan(bptt)
    calm = np.isfinite(vals[:, 3]) & np.isnan(bptt)
    if len(dead):
        calm &= ~(vals[:, dead] >= lim[0]).any(axis=1)
    if len(sat):
        calm &= ~(vals[:, sat] >= lim[1]).any(axis=1)
    if len(weights) >= 3:
        norms = vals[:, weights]
        calm &= norms[:, 0] >= norms.max(axis=1) * lim[2] * lim[3]
    if len(weights):
        r = vals[:, weights + 6]
        med = np.array([np.median(x[np.isfinite(x)]) if np.isfinite(x).any() else np.nan
                        for x in r])  # fmt: skip
        calm &= np.isnan(med) | (vals[:, 2] <= 0) | ((lim[4] <= med) & (med <= lim[5]))
    return calm, good


@pytest.mark.parametrize("k", [0, 2, 4])
def test_check_rows_matches_numpy(k):
    rng = np.random.default_rng(6 + k)
    n, a = 400, 3
    m = 4 + 7 * k + 3 * a
    vals = 10 ** rng.uniform(-7, 1, (n, m))
    vals[:, 2] = rng.choice([0.0, 0.1, np.nan], n, p=[0.1, 0.85, 0.05])
    vals[rng.random((n, m)) < 0.004] = np.inf
    vals[rng.random((n, m)) < 0.004] = np.nan
    p_at = 4 + 7 * np.arange(k)
    has_ratio = rng.random((n, k)) < 0.9
    ratio_cols, share_cols = p_at + 6, 4 + 7 * k + 3 * np.arange(a) + 1
    vals[:, ratio_cols] = np.where(has_ratio, 10 ** rng.uniform(-7, 0, (n, k)), np.nan)
    vals[:, share_cols] = rng.choice([0.0, 0.3, 0.5, 0.9, np.nan], (n, a))
    bptt = np.where(rng.random(n) < 0.1, 0.5, np.nan)
    lim = np.array([0.5, 0.5, 1e-3, 1 + 1e-9, 1e-5, 1e-1])
    args = (lim, p_at.astype(np.int64), share_cols[:1].astype(np.int64),
            share_cols[1:].astype(np.int64), ratio_cols.astype(np.int64),
            share_cols.astype(np.int64))  # fmt: skip
    calm, good = np.empty(n, bool), np.empty(n, bool)
    K.check_rows(vals, bptt, has_ratio, *args, calm, good)
    want_calm, want_good = _check_rows_ref(vals, bptt, has_ratio, *args)
    assert (calm == want_calm).all() and (good == want_good).all()
    assert 20 < calm.sum() < n - 20 and 20 < good.sum() < n - 20  # both kinds drawn
