"""Softmax along the last axis and the fused softmax-cross-entropy forward+backward."""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel

# Cephes' expf: exp(z) = 2^k * P(r), z = k ln2 + r. Without Intel SVML, Numba calls libm's
# scalar expf per element; this form vectorises (the 2^k is built in an int32 buffer).


@kernel
def row_max(row, lanes):
    """row (C,) float with C >= 1, lanes (8,) row's dtype scratch -> max(row). Eight running
    maxima break the compare chain so it vectorises; a NaN may be skipped here, but it still
    reaches every result through exp(row - max)."""
    c = row.shape[0]
    lanes[:] = row[0]
    n8 = c - c % 8
    for j in range(0, n8, 8):
        for k in range(8):
            v = row[j + k]
            if v > lanes[k]:
                lanes[k] = v
    m = lanes[0]
    for k in range(1, 8):
        if lanes[k] > m:
            m = lanes[k]
    for j in range(n8, c):
        if row[j] > m:
            m = row[j]
    return m


@kernel
def exp_shifted(row, m, out, ib):
    """row (C,) float, m scalar >= max(row), out (C,) row's dtype, ib (C,) int32 scratch ->
    out = exp(row - m), returns its sum (float64). float32 uses a vectorised expf."""
    c = row.shape[0]
    s = 0.0
    if row.itemsize != 4:
        for j in range(c):
            e = np.exp(row[j] - m)
            out[j] = e
            s += e
        return s
    fb = ib.view(np.float32)
    for j in range(c):
        z = row[j] - m
        if z < -87.3:  # NOTE: NaN fails the test and propagates, as the NaN guard needs
            z = np.float32(-87.3)
        k = np.floor(z * np.float32(1.44269504) + np.float32(0.5))
        r = z - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[j] = p * r * r + r + np.float32(1.0)
        ib[j] = (np.int32(k) + 127) << 23
    for j in range(c):
        e = out[j] * fb[j]
        out[j] = e
        s += e
    return s


@kernel
def softmax_rows(x, log):
    """x (M, C) float32/64 C-contiguous -> softmax (or log_softmax if log) of each row, (M, C)."""
    m_rows, c = x.shape
    out = np.empty_like(x)
    ib = np.empty(c, dtype=np.int32)
    lanes = np.empty(8, dtype=x.dtype)
    for i in range(m_rows):
        row = x[i]
        o = out[i]
        m = row_max(row, lanes)
        s = exp_shifted(row, m, o, ib)
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
    ib = np.empty(c, dtype=np.int32)
    lanes = np.empty(8, dtype=dt)
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
        m = row_max(row, lanes)
        s = exp_shifted(row, m, d, ib)
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


@kernel
def softmax_rows_bwd(y, g):
    """y (M, C) softmax output, g (M, C) its gradient, C-contiguous, one dtype -> dx (M, C) =
    y * (g - sum(g * y)) per row, in y's dtype (the row sum in float64)."""
    m_rows, c = y.shape
    dx = np.empty_like(y)
    for i in range(m_rows):
        dot = 0.0
        for j in range(c):
            dot += g[i, j] * y[i, j]
        d = y.dtype.type(dot)
        for j in range(c):
            dx[i, j] = y[i, j] * (g[i, j] - d)
    return dx
