"""Fused statistics for gradient diagnostics: one pass per array where numpy needs five.

A check point of ``bpcli train --diagnose=1`` runs at every step, so each statistic costs a
numpy call (and a temporary) per parameter per step; these kernels read each array once and
write their sums straight into the diagnostics' record row (``bpcli.app.diagnostics.record``):
per parameter the 7 columns ``[sum g, sum g^2, max |g|, count g == 0, sum w^2, size of g,
sum (w_after - w_before)^2]``, per activation layer the 4 ``[units active, sum y, units, size]``.
Sums are accumulated in float64 whatever the input dtype, so float32 squares cannot overflow.
Non-finite inputs propagate as IEEE says (the diagnostics report them): a NaN makes the sums
and the maximum NaN.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def grad_weight_stats(g, masks, w, snap, out):
    """g: 1-d float, masks: (1,) the unsigned int of g's width with the sign bit clear; w, snap:
    1-d (n,) float; out: float64 (6,) <- [sum g, sum g^2, max |g|, count g == 0, sum w^2,
    size of g]; copies w into snap -> float64 sum((w - snap)^2) of snap before the copy"""
    s = 0.0
    ss = 0.0
    z = 0
    for i in range(g.shape[0]):
        v = np.float64(g[i])
        s += v
        ss += v * v
        z += v == 0.0
    # NOTE: max |g| on the bits: a float max reduction does not vectorise without 'nnan'
    # (10x slower), an integer one does. With the sign bit clear, the bits of floats order
    # as their magnitudes, and NaN's above inf's, so a NaN still comes out as NaN.
    gbits = g.view(masks.dtype)  # here, not by the caller: a view costs Python ~0.2 us
    mask = masks[0]
    m = gbits[0] & mask if gbits.shape[0] else mask ^ mask
    for i in range(gbits.shape[0]):
        m = max(m, gbits[i] & mask)
    top = np.empty(1, gbits.dtype)
    top[0] = m
    ws = 0.0
    d = 0.0  # the update the snapshot is the start of, when w is the weights after it
    for i in range(w.shape[0]):
        v = np.float64(w[i])
        ws += v * v
        dv = v - np.float64(snap[i])
        d += dv * dv
        snap[i] = w[i]
    out[0] = s
    out[1] = ss
    out[2] = top.view(g.dtype)[0]
    out[3] = z
    out[4] = ws
    out[5] = g.shape[0]
    return d


@kernel
def delta_sq(w, snap):
    """w, snap: 1-d (n,) same float dtype -> float64 sum((w - snap)^2)"""
    d = 0.0
    for i in range(w.shape[0]):
        v = np.float64(w[i]) - np.float64(snap[i])
        d += v * v
    return d


@kernel
def unit_activity(y, lo, hi, out):
    """y: (outer, units, inner) float; lo, hi: float64; out: float64 (4,) <- [units with some
    lo < y < hi, sum y, units, size of y]"""
    units = y.shape[1]
    on = np.zeros(units, np.bool_)
    s = 0.0
    if y.shape[2] == 1:  # features last (dense layers): the unit loop is the inner one
        for a in range(y.shape[0]):
            for u in range(units):
                v = np.float64(y[a, u, 0])
                s += v
                on[u] |= (v > lo) & (v < hi)
    else:
        for a in range(y.shape[0]):
            for u in range(units):
                hit = False
                for b in range(y.shape[2]):
                    v = np.float64(y[a, u, b])
                    s += v
                    hit |= (v > lo) & (v < hi)
                on[u] |= hit
    n = 0
    for u in range(units):
        n += on[u]
    out[0] = n
    out[1] = s
    out[2] = units
    out[3] = y.shape[0] * units * y.shape[2]


@kernel
def grad_weight_stats_all(gs, masks, ws, snaps, out, prev):
    """grad_weight_stats over k parameters in one call: tuples of k arrays (one dtype),
    out: float64 (k, >= 6), row i for parameter i; prev: float64 (k, 7), column 6 of row i
    <- parameter i's sum((w - snap)^2) before the copy"""
    for k in range(len(gs)):
        prev[k, 6] = grad_weight_stats(gs[k], masks, ws[k], snaps[k], out[k])


@kernel
def delta_sq_all(ws, snaps, out):
    """delta_sq over k parameters in one call: tuples of k arrays (one dtype); out: float64
    (k, 7), column 6 of row i <- parameter i's"""
    for k in range(len(ws)):
        out[k, 6] = delta_sq(ws[k], snaps[k])


@kernel
def derive_rows(head, params, acts, out):
    """head: (n, >= 4) float64 [epoch, step, lr, stepped]; params: (n, k, 7), acts: (n, a, 4)
    float64 record blocks -> out: float64 (n, 4 + 7k + 3a) <- [epoch, step, lr, total grad
    norm, per parameter the report's 7 statistics, per activation layer [units, share, mean]]
    (NaN: no update ratio, no share)"""
    k, a = params.shape[1], acts.shape[1]
    for r in range(params.shape[0]):
        out[r, 0] = head[r, 0]
        out[r, 1] = head[r, 1]
        out[r, 2] = head[r, 2]
        stepped = head[r, 3] == 1.0
        tot = 0.0
        for p in range(k):
            s, ss, size, wsq = params[r, p, 0], params[r, p, 1], params[r, p, 5], params[r, p, 4]
            tot += ss
            norm = np.sqrt(ss)
            o = 4 + 7 * p
            mean, std, zero = 0.0, 0.0, 1.0  # an empty gradient
            if size != 0.0:
                mean = s / size
                std = np.sqrt(max(ss / size - mean * mean, 0.0)) if np.isfinite(ss) else norm
                zero = params[r, p, 3] / size
            wn = np.sqrt(wsq)
            out[r, o] = norm
            out[r, o + 1] = mean
            out[r, o + 2] = std
            out[r, o + 3] = params[r, p, 2]
            out[r, o + 4] = zero
            out[r, o + 5] = wn
            out[r, o + 6] = np.sqrt(params[r, p, 6]) / wn if stepped and wn > 0.0 else np.nan
        out[r, 3] = np.sqrt(tot)
        for j in range(a):
            active, ysum, units, ysize = acts[r, j, 0], acts[r, j, 1], acts[r, j, 2], acts[r, j, 3]
            o = 4 + 7 * k + 3 * j
            out[r, o] = units
            out[r, o + 1] = 1.0 - active / units if ysize > 0.0 else np.nan
            out[r, o + 2] = ysum / ysize if ysize > 0.0 else 0.0


@kernel
def _n_digits(q):
    """q: int64 >= 0 -> the number of its decimal digits"""
    n = 1
    while q >= 10:
        n += 1
        q //= 10
    return n


@kernel
def _nine_digits(x, p, down):
    """x > 0 float64 -> round(x * p) (``down``: x / p) as int64: its first 9 digits when p is
    the right power of ten"""
    return np.int64(np.round(x / p if down else x * p))


# NOTE: format_rows is one body with no helper taking an array: each call of a kernel with
# array arguments pays reference counting, which made it as slow as Python's % formatting.
@kernel
def format_rows(vals, good, segs, seg_at, ints, pow10, buf):
    """vals: (n, m) float64; good: (n,) bool, the rows to write (cleared where a number is out
    of [1e-290, 1e290]); segs: uint8, the text around the m numbers, seg_at: int64 (m + 2,)
    its m + 1 pieces' offsets; ints: (m,) bool, written as integers; pow10: float64 (617,)
    10.0 ** (i - 308) at i; buf: uint8, n times the longest line -> bytes written to buf:
    each row's line (empty if not good) and a newline; NaN is written as null, other floats
    as "%.9g" writes them (but for rounding ties: the digits of a product within 1 ulp)"""
    at = 0
    m = vals.shape[1]
    for r in range(vals.shape[0]):
        if good[r]:
            for j in range(m):
                v = abs(vals[r, j])
                if v != 0.0 and not (1e-290 <= v <= 1e290) and v == v:
                    good[r] = False
        if not good[r]:
            buf[at] = 10
            at += 1
            continue
        for j in range(m + 1):
            s0, s1 = seg_at[j], seg_at[j + 1]
            buf[at : at + s1 - s0] = segs[s0:s1]  # a block copy: the text is most of a line
            at += s1 - s0
            if j == m:
                break
            v = vals[r, j]
            if v != v:
                buf[at] = 110  # null
                buf[at + 1] = 117
                buf[at + 2] = 108
                buf[at + 3] = 108
                at += 4
                continue
            if v < 0.0:
                buf[at] = 45
                at += 1
                v = -v
            if ints[j] or v == 0.0:
                q = np.int64(v)
                n = _n_digits(q)
                for i in range(at + n - 1, at - 1, -1):
                    buf[i] = 48 + q % 10
                    q //= 10
                at += n
                continue
            # The binary exponent puts e at floor(log10 v) or one below, at the price of a
            # log10's third; rounded up to a power of ten moves it up one more.
            e = np.int64(np.floor((math.frexp(v)[1] - 1) * 0.30102999566398120))
            q = _nine_digits(v, pow10[316 - e] if e <= 8 else pow10[e - 8 + 308], e > 8)
            while q >= 1_000_000_000:
                e += 1
                q = _nine_digits(v, pow10[316 - e] if e <= 8 else pow10[e - 8 + 308], e > 8)
            # NOTE: digits in uint32: a signed int64 // 10 (Python's floor) costs 3x more
            u, ten = np.uint32(q), np.uint32(10)
            nd = 9
            while nd > 1 and u % ten == 0:
                u //= ten
                nd -= 1
            fixed = -4 <= e < 9
            if fixed and e < 0:  # 0.000ddd
                buf[at] = 48
                buf[at + 1] = 46
                at += 2
                for _ in range(-e - 1):
                    buf[at] = 48
                    at += 1
                dot = nd  # none
            else:
                dot = e + 1 if fixed else 1  # ddd.ddd or d.ddde+XX
            # the nd digits, with a point after the first `dot` of them if some follow
            width = nd + (nd > dot)
            for i in range(nd - 1, -1, -1):
                t = u // ten
                buf[at + i + (i >= dot)] = np.uint8(48) + np.uint8(u - t * ten)
                u = t
            if nd > dot:
                buf[at + dot] = 46
            at += width
            if fixed:
                for _ in range(dot - nd):  # ddd000
                    buf[at] = 48
                    at += 1
                continue
            buf[at] = 101
            buf[at + 1] = 45 if e < 0 else 43
            at += 2
            x = abs(e)
            n = max(_n_digits(x), 2)
            for i in range(at + n - 1, at - 1, -1):
                buf[i] = 48 + x % 10
                x //= 10
            at += n
        buf[at] = 10
        at += 1
    return at


@kernel
def check_rows(vals, bptt, has_ratio, lim, weights, dead, sat, ratio_cols, share_cols, calm,
               good):  # fmt: skip
    """vals: float64 (n, m) rows of derive_rows; bptt: (n,) float64; has_ratio: bool (n, k
    parameters); lim: float64 [dead share,
    saturated share, vanish factor, its margin, ratio low, ratio high]; weights: int64 column
    of each >= 2-d parameter's grad norm; dead, sat: int64 share columns; ratio_cols,
    share_cols: int64 -> calm, good: bool (n,) <- no flag rule can fire (Record.calm's test);
    the row's numbers fit the line template (finite, but a missing ratio or share; no bptt)"""
    k = weights.shape[0]
    buf = np.empty(k)
    for r in range(vals.shape[0]):
        ok = np.isnan(bptt[r])
        g = ok
        if g:
            for c in range(vals.shape[1]):
                if not np.isfinite(vals[r, c]):
                    g = False
                    break
            if not g:  # a missing update ratio or share is written as null
                g = True
                for c in range(vals.shape[1]):
                    x = vals[r, c]
                    if np.isfinite(x):
                        continue
                    missing = False
                    for j in range(ratio_cols.shape[0]):
                        if ratio_cols[j] == c:
                            missing = not has_ratio[r, j]
                    for j in range(share_cols.shape[0]):
                        if share_cols[j] == c:
                            missing = np.isnan(x)
                    if not missing:
                        g = False
                        break
        good[r] = g
        ok = ok and np.isfinite(vals[r, 3])
        for j in range(dead.shape[0]):
            if vals[r, dead[j]] >= lim[0]:
                ok = False
        for j in range(sat.shape[0]):
            if vals[r, sat[j]] >= lim[1]:
                ok = False
        if ok and k >= 3:
            top = vals[r, weights[0]]
            for j in range(k):
                x = vals[r, weights[j]]
                if np.isnan(x) or x > top:
                    top = x
            if not (vals[r, weights[0]] >= top * lim[2] * lim[3]):
                ok = False
        if ok and k > 0 and not vals[r, 2] <= 0.0:  # a NaN lr is judged
            m = 0
            for j in range(k):
                x = vals[r, weights[j] + 6]
                if np.isfinite(x):
                    buf[m] = x
                    m += 1
            if m > 0:
                s = np.sort(buf[:m])
                med = (s[(m - 1) // 2] + s[m // 2]) / 2
                if not (lim[4] <= med <= lim[5]):
                    ok = False
        calm[r] = ok


@kernel
def write_rows(head, params, acts, vals, has_ratio, lim, weights, dead, sat, ratio_cols,
               share_cols, calm, good, segs, seg_at, ints, pow10, buf):  # fmt: skip
    """derive_rows, check_rows and format_rows in one call (the arguments of each; has_ratio:
    bool (n, k) <- stepped and a weight norm > 0) -> bytes written to buf. At an epoch end
    the record holds a row or two: three dispatches and the numpy between cost more than
    the work."""
    derive_rows(head, params, acts, vals)
    for r in range(vals.shape[0]):
        for p in range(has_ratio.shape[1]):
            has_ratio[r, p] = head[r, 3] == 1.0 and vals[r, 4 + 7 * p + 5] > 0.0
    check_rows(vals, head[:, 4], has_ratio, lim, weights, dead, sat, ratio_cols, share_cols,
               calm, good)  # fmt: skip
    return format_rows(vals, good, segs, seg_at, ints, pow10, buf)
