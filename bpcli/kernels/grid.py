"""Gather and scatter of weighted taps: the inner loops of grid_sample, forward and backward.

A sampling point q of batch item b reads K taps: flat positions ``idx[b, q, k]`` of each (b, c)
plane (-1: a tap outside the input, skipped) with weights ``w[b, q, k]``. Working on the taps
directly avoids the (N, C, Q, K) array of gathered values a numpy version would build.
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def taps_gather(x, idx, w):
    """x (N, C, P) float, idx (N, Q, K) int64, w (N, Q, K) -> y (N, C, Q): y = sum_k w x[idx]."""
    n, c, _ = x.shape
    q, k = idx.shape[1], idx.shape[2]
    out = np.zeros((n, c, q), dtype=x.dtype)
    for b in range(n):
        for ci in range(c):
            plane = x[b, ci]
            for qi in range(q):
                acc = 0.0
                for ki in range(k):
                    at = idx[b, qi, ki]
                    if at >= 0:
                        acc += plane[at] * w[b, qi, ki]
                out[b, ci, qi] = acc
    return out


@kernel
def taps_scatter(g, idx, w, p):
    """g (N, C, Q) float, idx, w (N, Q, K) -> dx (N, C, p): the transpose of taps_gather."""
    n, c, q = g.shape
    k = idx.shape[2]
    dx = np.zeros((n, c, p), dtype=g.dtype)
    for b in range(n):
        for ci in range(c):
            plane = dx[b, ci]
            for qi in range(q):
                v = g[b, ci, qi]
                for ki in range(k):
                    at = idx[b, qi, ki]
                    if at >= 0:
                        plane[at] += v * w[b, qi, ki]
    return dx


@kernel
def taps_dot(x, g, idx):
    """x (N, C, P), g (N, C, Q) float, idx (N, Q, K) -> (N, Q, K): sum_c g x[idx]."""
    n, c, _ = x.shape
    q, k = idx.shape[1], idx.shape[2]
    out = np.zeros((n, q, k), dtype=x.dtype)
    for b in range(n):
        for ci in range(c):
            plane = x[b, ci]
            for qi in range(q):
                v = g[b, ci, qi]
                for ki in range(k):
                    at = idx[b, qi, ki]
                    if at >= 0:
                        out[b, qi, ki] += v * plane[at]
    return out
