"""Fused statistics for gradient diagnostics: one pass per array where numpy needs five.

A check point of ``bpcli train --diagnose=1`` runs at every step, so each statistic costs a
numpy call (and a temporary) per parameter per step; these kernels read each array once and
write their sums straight into the diagnostics' record row (``bpcli.app.diagnostics_record``):
per parameter the 7 columns ``[sum g, sum g^2, max |g|, count g == 0, sum w^2, size of g,
sum (w_after - w_before)^2]``, per activation layer the 4 ``[units active, sum y, units, size]``.
Sums are accumulated in float64 whatever the input dtype, so float32 squares cannot overflow.
Non-finite inputs propagate as IEEE says (the diagnostics report them): a NaN makes the sums
and the maximum NaN.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def grad_weight_stats(g, gbits, masks, w, snap, out):
    """g: 1-d float, gbits: g viewed as the unsigned int of its width, masks: (1,) that int
    with the sign bit clear; w, snap: 1-d (n,) float; out: float64 (5,) <- [sum g, sum g^2, max |g|,
    count g == 0, sum w^2]; copies w into snap"""
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
    mask = masks[0]
    m = gbits[0] & mask if gbits.shape[0] else mask ^ mask
    for i in range(gbits.shape[0]):
        m = max(m, gbits[i] & mask)
    top = np.empty(1, gbits.dtype)
    top[0] = m
    ws = 0.0
    for i in range(w.shape[0]):
        v = np.float64(w[i])
        ws += v * v
        snap[i] = w[i]
    out[0] = s
    out[1] = ss
    out[2] = top.view(g.dtype)[0]
    out[3] = z
    out[4] = ws
    out[5] = g.shape[0]


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
def grad_weight_stats_all(gs, gbits, masks, ws, snaps, out):
    """grad_weight_stats over k parameters in one call: tuples of k arrays (one dtype),
    out: float64 (k, >= 6), row i for parameter i"""
    for k in range(len(gs)):
        grad_weight_stats(gs[k], gbits[k], masks, ws[k], snaps[k], out[k])


@kernel
def delta_sq_all(ws, snaps, out):
    """delta_sq over k parameters in one call: tuples of k arrays (one dtype); out: float64
    (k, 7), column 6 of row i <- parameter i's"""
    for k in range(len(ws)):
        out[k, 6] = delta_sq(ws[k], snaps[k])
