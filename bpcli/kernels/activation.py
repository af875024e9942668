"""erf and the exact (erf) GELU, which numpy cannot compute at all.

Every kernel takes 1-d contiguous float32/float64 arrays of equal length and returns a new
array of the input's dtype; the engine flattens n-d arrays before the call. float64 uses libm's
erf; float32 uses a rational approximation (|error| < 4e-7) that LLVM vectorises, which a
libm call inside the loop would prevent (about 20x faster on AVX2). For the same reason the
backward takes exp(-x^2 / 2) from numpy (vectorised) rather than calling exp in the loop.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.kernels._jit import kernel

# NOTE: np.divide, not '/': Numba's Python error model checks every '/' for a zero divisor,
# which stops the loop from vectorising (and would raise instead of giving inf).


@kernel
def erf32(v):
    """v: float32 scalar -> erf(v) float32 (the rational fit of Eigen/XLA on [-4, 4])"""
    x = min(max(v, np.float32(-4.0)), np.float32(4.0))
    x2 = x * x
    p = x2 * np.float32(-2.72614225801306e-10) + np.float32(2.77068142495902e-08)
    p = x2 * p + np.float32(-2.10102402082508e-06)
    p = x2 * p + np.float32(-5.69250639462346e-05)
    p = x2 * p + np.float32(-7.34990630326855e-04)
    p = x2 * p + np.float32(-2.95459980854025e-03)
    p = x2 * p + np.float32(-1.60960333262415e-02)
    q = x2 * np.float32(-1.45660718464996e-05) + np.float32(-2.13374055278905e-04)
    q = x2 * q + np.float32(-1.68282697438203e-03)
    q = x2 * q + np.float32(-7.37332916720468e-03)
    q = x2 * q + np.float32(-1.42647390514189e-02)
    r = np.divide(x * p, q)
    return min(max(r, np.float32(-1.0)), np.float32(1.0))  # the fit overshoots 1 by an ulp


@kernel
def erf_fwd(x):
    """x: (n,) float32/float64 -> erf(x): (n,) same dtype"""
    y = np.empty_like(x)
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            y[i] = erf32(x[i])
    else:
        for i in range(x.shape[0]):
            y[i] = math.erf(x[i])
    return y


@kernel
def gelu_fwd(x):
    """x: (n,) float32/float64 -> x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2: (n,) same dtype"""
    y = np.empty_like(x)
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            v = x[i]
            y[i] = np.float32(0.5) * v * (np.float32(1.0) + erf32(v * np.float32(0.70710677)))
    else:
        for i in range(x.shape[0]):
            v = x[i]
            y[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))
    return y


@kernel
def gelu_bwd(x, e, g):
    """x, e = exp(-x^2 / 2), g: (n,) float -> g (Phi(x) + x phi(x)), the exact GELU VJP"""
    dx = np.empty_like(x)
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            v = x[i]
            cdf = np.float32(0.5) * (np.float32(1.0) + erf32(v * np.float32(0.70710677)))
            dx[i] = g[i] * (cdf + v * np.float32(0.39894228) * e[i])
    else:
        for i in range(x.shape[0]):
            v = x[i]
            cdf = 0.5 * (1.0 + math.erf(v * 0.7071067811865476))
            dx[i] = g[i] * (cdf + v * 0.3989422804014327 * e[i])
    return dx
