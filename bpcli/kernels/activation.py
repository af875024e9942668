"""Elementwise activation kernels that numpy cannot do in one pass (it has no erf at all).

Every kernel takes 1-d contiguous float32/float64 arrays of equal length and returns a new
array of the input's dtype; the engine flattens n-d arrays before the call. Arithmetic runs in
float64 and is rounded once on store, so float32 results are as close as the dtype allows.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.kernels._jit import kernel

# NOTE: literals inside the kernels, not module globals: Numba's cache does not see globals.


@kernel
def erf_fwd(x):
    """x: (n,) float -> erf(x): (n,) same dtype"""
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        y[i] = math.erf(x[i])
    return y


@kernel
def erf_bwd(x, g):
    """x, g: (n,) float -> g * 2/sqrt(pi) * exp(-x^2): (n,) same dtype"""
    dx = np.empty_like(x)
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        dx[i] = g[i] * 1.1283791670955126 * math.exp(-v * v)
    return dx


@kernel
def gelu_fwd(x):
    """x: (n,) float -> x * Phi(x) (exact, erf form): (n,) same dtype"""
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        y[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))
    return y


@kernel
def gelu_bwd(x, g):
    """x, g: (n,) float -> g * (Phi(x) + x * phi(x)) (exact GELU VJP): (n,) same dtype"""
    dx = np.empty_like(x)
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        cdf = 0.5 * (1.0 + math.erf(v * 0.7071067811865476))
        pdf = 0.3989422804014327 * math.exp(-0.5 * v * v)
        dx[i] = g[i] * (cdf + v * pdf)
    return dx


@kernel
def gelu_tanh_fwd(x):
    """x: (n,) float -> 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): (n,) same dtype"""
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        t = math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))
        y[i] = 0.5 * v * (1.0 + t)
    return y


@kernel
def gelu_tanh_bwd(x, g):
    """x, g: (n,) float -> VJP of the tanh-approximate GELU: (n,) same dtype"""
    dx = np.empty_like(x)
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        t = math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))
        dinner = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * v * v)
        dx[i] = g[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dinner)
    return dx
