"""Softmax along the last axis and the fused softmax-cross-entropy forward+backward."""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def softmax_rows(x, log):
    """x (M, C) float32/64 C-contiguous -> softmax (or log_softmax if log) of each row, (M, C)."""
    m_rows, c = x.shape
    out = np.empty_like(x)
    for i in range(m_rows):
        row = x[i]
        o = out[i]
        m = row[0]
        for j in range(1, c):
            if row[j] > m:
                m = row[j]
        s = 0.0
        for j in range(c):
            e = np.exp(row[j] - m)
            o[j] = e
            s += e
        if log:
            lse = m + np.log(s)
            for j in range(c):
                o[j] = row[j] - lse
        else:
            inv = 1.0 / s
            for j in range(c):
                o[j] = o[j] * inv
    return out


@kernel
def softmax_xent_fwd_bwd(logits, target, weight, ignore_index, smoothing):
    """logits (M, C) float, target (M,) int64, weight (C,) logits' dtype, ignore_index int,
    smoothing float -> loss (M,), dloss_i/dlogits_i (M, C), wt (M,) = weight[target] (0 where
    ignored), all in logits' dtype. Row i: q = (1-s) w_t onehot(t) + s/C w; loss = -q.logp;
    dlogits = softmax * sum(q) - q."""
    m_rows, c = logits.shape
    dt = logits.dtype
    loss = np.zeros(m_rows, dtype=dt)
    wt = np.zeros(m_rows, dtype=dt)
    dlog = np.empty((m_rows, c), dtype=dt)
    keep = 1.0 - smoothing
    spread = smoothing / c
    wsum = 0.0
    if smoothing > 0.0:
        for j in range(c):
            wsum += weight[j]
    for i in range(m_rows):
        row = logits[i]
        d = dlog[i]
        t = target[i]
        if t == ignore_index:
            d[:] = 0.0
            continue
        m = row[0]
        for j in range(1, c):
            if row[j] > m:
                m = row[j]
        s = 0.0
        for j in range(c):
            e = np.exp(row[j] - m)
            d[j] = e
            s += e
        lse = m + np.log(s)
        w_t = weight[t]
        q_sum = keep * w_t + spread * wsum
        scale = q_sum / s
        for j in range(c):
            d[j] = d[j] * scale
        d[t] -= keep * w_t
        li = keep * w_t * (lse - row[t])
        if smoothing > 0.0:
            acc = 0.0
            for j in range(c):
                acc += weight[j] * (lse - row[j])
                d[j] -= spread * weight[j]
            li += spread * acc
        loss[i] = li
        wt[i] = w_t
    return loss, dlog, wt
