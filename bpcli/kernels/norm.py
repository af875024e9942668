"""Fused batch, layer and group normalisation, forward and backward.

Statistics are accumulated in float64 whatever the input dtype (a float32 sum over a large
batch loses digits), two-pass (mean, then squared deviations) for stability; the elementwise
passes run in the input's dtype so they vectorise. No temporary as large as the input is made.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def _channel_sum(x, mu, square):
    """x (N, C, L) C-contiguous, mu (C,) float64 -> float64 (C,) sum of (x - mu) or (x - mu)^2
    over N and L."""
    n, c, length = x.shape
    acc = np.zeros(c)
    if length == 1:  # (N, C): vectorise across channels instead of a length-1 inner loop
        x2 = x.reshape(n, c)
        for i in range(n):
            for j in range(c):
                d = x2[i, j] - mu[j]
                acc[j] += d * d if square else d
        return acc
    for i in range(n):
        for j in range(c):
            s = 0.0
            mj = mu[j]
            for k in range(length):
                d = x[i, j, k] - mj
                s += d * d if square else d
            acc[j] += s
    return acc


@kernel
def _channel_gsums(g, x, mu):
    """g, x (N, C, L) C-contiguous, mu (C,) -> float64 (C,) sums of g and of g * (x - mu)."""
    n, c, length = x.shape
    sg = np.zeros(c)
    sgx = np.zeros(c)
    if length == 1:
        x2, g2 = x.reshape(n, c), g.reshape(n, c)
        for i in range(n):
            for j in range(c):
                gv = g2[i, j]
                sg[j] += gv
                sgx[j] += gv * (x2[i, j] - mu[j])
        return sg, sgx
    for i in range(n):
        for j in range(c):
            mj = mu[j]
            s1 = 0.0
            s2 = 0.0
            for k in range(length):
                gv = g[i, j, k]
                s1 += gv
                s2 += gv * (x[i, j, k] - mj)
            sg[j] += s1
            sgx[j] += s2
    return sg, sgx


@kernel
def _channel_axpb(x, g, p, q, r, mu):
    """x, g (N, C, L) C-contiguous; p, q, r, mu (C,) -> p g + q (x - mu) + r per channel, like x
    (g may be x itself when p is 0)."""
    n, c, length = x.shape
    out = np.empty_like(x)
    if length == 1:
        x2, g2, o2 = x.reshape(n, c), g.reshape(n, c), out.reshape(n, c)
        for i in range(n):
            for j in range(c):
                o2[i, j] = p[j] * g2[i, j] + q[j] * (x2[i, j] - mu[j]) + r[j]
        return out
    for i in range(n):
        for j in range(c):
            pj = p[j]
            qj = q[j]
            rj = r[j]
            mj = mu[j]
            for k in range(length):
                out[i, j, k] = pj * g[i, j, k] + qj * (x[i, j, k] - mj) + rj
    return out


@kernel
def batchnorm_fwd(x, gamma, beta, mean, var, eps, training):
    """x (N, C, L) C-contiguous; gamma, beta, mean, var (C,) of x's dtype -> y like x, mean (C,),
    biased var (C,), invstd (C,); training: batch statistics, else the given mean/var."""
    n, c, length = x.shape
    m = np.empty(c, x.dtype)
    v = np.empty(c, x.dtype)
    inv = np.empty(c, x.dtype)
    if training:
        cnt = n * length
        mu = _channel_sum(x, np.zeros(c), False) / cnt
        var_b = _channel_sum(x, mu, True) / cnt
        for j in range(c):
            m[j] = mu[j]
            v[j] = var_b[j]
            inv[j] = 1.0 / np.sqrt(var_b[j] + eps)
    else:
        for j in range(c):
            m[j] = mean[j]
            v[j] = var[j]
            inv[j] = 1.0 / np.sqrt(np.float64(var[j]) + eps)
    zero = np.zeros(c, x.dtype)
    scale = np.empty(c, x.dtype)
    for j in range(c):
        scale[j] = np.float64(gamma[j]) * inv[j]
    return _channel_axpb(x, x, zero, scale, beta, m), m, v, inv


@kernel
def batchnorm_bwd(g, x, mean, invstd, gamma, training):
    """g, x (N, C, L) C-contiguous; mean, invstd, gamma (C,) -> dx like x, dgamma (C,),
    dbeta (C,); training: x's batch statistics are differentiated too, else they are constants."""
    n, c, length = x.shape
    sg, sgx = _channel_gsums(g, x, mean.astype(np.float64))
    dgamma = np.empty(c, x.dtype)
    dbeta = np.empty(c, x.dtype)
    p = np.empty(c, x.dtype)  # dx = p g + q (x - mean) + r
    q = np.empty(c, x.dtype)
    r = np.empty(c, x.dtype)
    cnt = n * length
    for j in range(c):
        iv = np.float64(invstd[j])
        dbeta[j] = sg[j]
        dgamma[j] = sgx[j] * iv
        a = np.float64(gamma[j]) * iv
        p[j] = a
        if training:
            q[j] = -a * sgx[j] * iv * iv / cnt
            r[j] = -a * sg[j] / cnt
        else:
            q[j] = 0.0
            r[j] = 0.0
    return _channel_axpb(x, g, p, q, r, mean), dgamma, dbeta


@kernel
def layernorm_fwd(x, gamma, beta, eps):
    """x (R, D) C-contiguous; gamma, beta (D,) -> y like x, mean (R,), invstd (R,)."""
    rows, d = x.shape
    y = np.empty_like(x)
    mean = np.empty(rows, x.dtype)
    inv = np.empty(rows, x.dtype)
    for i in range(rows):
        s = 0.0
        for k in range(d):
            s += x[i, k]
        mu = s / d
        s = 0.0
        for k in range(d):
            t = x[i, k] - mu
            s += t * t
        iv = 1.0 / np.sqrt(s / d + eps)
        mean[i] = mu
        inv[i] = iv
        m32 = x.dtype.type(mu)
        i32 = x.dtype.type(iv)
        for k in range(d):
            y[i, k] = (x[i, k] - m32) * i32 * gamma[k] + beta[k]
    return y, mean, inv


@kernel
def layernorm_bwd(g, x, mean, invstd, gamma):
    """g, x (R, D) C-contiguous; mean, invstd (R,); gamma (D,) -> dx like x, dgamma (D,),
    dbeta (D,)."""
    rows, d = x.shape
    dx = np.empty_like(x)
    dgamma = np.zeros(d)
    dbeta = np.zeros(d)
    for i in range(rows):
        mu = mean[i]
        iv = invstd[i]
        s1 = 0.0
        s2 = 0.0
        for k in range(d):
            gg = g[i, k] * gamma[k]
            xh = (x[i, k] - mu) * iv
            s1 += gg
            s2 += gg * xh
            dgamma[k] += g[i, k] * xh
            dbeta[k] += g[i, k]
        a = x.dtype.type(s1 / d)
        b = x.dtype.type(s2 / d)
        for k in range(d):
            xh = (x[i, k] - mu) * iv
            dx[i, k] = iv * (g[i, k] * gamma[k] - a - xh * b)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)


@kernel
def groupnorm_fwd(x, gamma, beta, groups, eps):
    """x (N, C, L) C-contiguous, C divisible by groups; gamma, beta (C,) -> y like x,
    mean (N, G), invstd (N, G)."""
    n, c, length = x.shape
    cg = c // groups
    cnt = cg * length
    y = np.empty_like(x)
    mean = np.empty((n, groups), x.dtype)
    inv = np.empty((n, groups), x.dtype)
    for i in range(n):
        for gi in range(groups):
            s = 0.0
            for j in range(gi * cg, (gi + 1) * cg):
                for k in range(length):
                    s += x[i, j, k]
            mu = s / cnt
            s = 0.0
            for j in range(gi * cg, (gi + 1) * cg):
                for k in range(length):
                    t = x[i, j, k] - mu
                    s += t * t
            iv = 1.0 / np.sqrt(s / cnt + eps)
            mean[i, gi] = mu
            inv[i, gi] = iv
            for j in range(gi * cg, (gi + 1) * cg):
                a = x.dtype.type(gamma[j] * iv)
                b = x.dtype.type(beta[j] - mu * gamma[j] * iv)
                for k in range(length):
                    y[i, j, k] = x[i, j, k] * a + b
    return y, mean, inv


@kernel
def groupnorm_bwd(g, x, mean, invstd, gamma, groups):
    """g, x (N, C, L) C-contiguous; mean, invstd (N, G); gamma (C,) -> dx like x, dgamma (C,),
    dbeta (C,)."""
    n, c, length = x.shape
    cg = c // groups
    cnt = cg * length
    dx = np.empty_like(x)
    dgamma = np.zeros(c)
    dbeta = np.zeros(c)
    for i in range(n):
        for gi in range(groups):
            mu = mean[i, gi]
            iv = invstd[i, gi]
            s1 = 0.0
            s2 = 0.0
            for j in range(gi * cg, (gi + 1) * cg):
                t1 = 0.0
                t2 = 0.0
                for k in range(length):
                    gv = g[i, j, k]
                    t1 += gv
                    t2 += gv * (x[i, j, k] - mu)
                dbeta[j] += t1
                dgamma[j] += t2 * iv
                s1 += t1 * gamma[j]
                s2 += t2 * iv * gamma[j]
            a = s1 / cnt
            b = s2 / cnt
            for j in range(gi * cg, (gi + 1) * cg):
                p = x.dtype.type(iv * gamma[j])
                q = x.dtype.type(iv * b * iv)
                r = x.dtype.type(iv * a)
                m = x.dtype.type(mu)
                for k in range(length):
                    dx[i, j, k] = p * g[i, j, k] - q * (x[i, j, k] - m) - r
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)
