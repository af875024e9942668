"""Fused LSTM and GRU cell nonlinearities and state updates, forward and backward.

The matrix products stay in numpy (BLAS), and so do tanh (and sigmoid as (1 + tanh(x/2)) / 2):
numpy's SIMD tanh is ~20x faster than the scalar libm calls Numba makes without SVML. These
kernels do the rest of the per-element gate maths and state update in one pass each.
PyTorch's gate order: LSTM (i, f, g, o), GRU (r, z, n).
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def lstm_cell_fwd_into(t, c, c2):
    """In place: t (N, 4H) = tanh of the pre-activations halved for the sigmoid gates i, f, o
    becomes the activated gates i, f, g, o; c2 (N, H) gets c' = f c + i g from c (N, H)."""
    n, h4 = t.shape
    hd = h4 // 4
    half = t.dtype.type(0.5)
    for b in range(n):
        for k in range(hd):
            i = half + half * t[b, k]
            f = half + half * t[b, hd + k]
            t[b, k] = i
            t[b, hd + k] = f
            t[b, 3 * hd + k] = half + half * t[b, 3 * hd + k]
            c2[b, k] = f * c[b, k] + i * t[b, 2 * hd + k]


@kernel
def lstm_cell_fwd(t, c):
    """t (N, 4H) tanh'd pre-activations as in ``lstm_cell_fwd_into``, c (N, H), C-contiguous,
    one dtype -> act (N, 4H) activated gates i, f, g, o, c' = f c + i g (N, H)."""
    act = t.copy()
    c2 = np.empty_like(c)
    lstm_cell_fwd_into(act, c, c2)
    return act, c2


@kernel
def lstm_cell_bwd_into(dout, dh, dc, act, c, tc, dgates, dcp):
    """dout + dh (N, H) gradient of h', dc (N, H) of c'; act (N, 4H), c (N, H) previous cell,
    tc (N, H) tanh(c') from the forward -> dgates (N, 4H) pre-activation grads and dcp (N, H)
    the previous cell's grad, written into the arrays given (dcp may be dc itself)."""
    n, h4 = act.shape
    hd = h4 // 4
    one = act.dtype.type(1.0)
    for b in range(n):
        for k in range(hd):
            i = act[b, k]
            f = act[b, hd + k]
            g = act[b, 2 * hd + k]
            o = act[b, 3 * hd + k]
            t = tc[b, k]
            dhv = dout[b, k] + dh[b, k]
            dct = dc[b, k] + dhv * o * (one - t * t)
            dgates[b, k] = dct * g * i * (one - i)
            dgates[b, hd + k] = dct * c[b, k] * f * (one - f)
            dgates[b, 2 * hd + k] = dct * i * (one - g * g)
            dgates[b, 3 * hd + k] = dhv * t * o * (one - o)
            dcp[b, k] = dct * f


@kernel
def lstm_cell_bwd(dh, dc, act, c, tc):
    """dh, dc (N, H) output grads; act (N, 4H), c (N, H) previous cell, tc (N, H) tanh(c') from
    the forward -> dgates (N, 4H) pre-activation grads, dc_prev (N, H)."""
    dgates = np.empty_like(act)
    dcp = np.empty_like(c)
    lstm_cell_bwd_into(dh, np.zeros_like(dh), dc, act, c, tc, dgates, dcp)
    return dgates, dcp


@kernel
def gru_cell_fwd(trz, gi, gh):
    """trz (N, 2H) = tanh((gi + gh)[:, :2H] / 2); gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh
    (N, 3H), C-contiguous, one dtype -> act (N, 3H) holding r, z and the pre-tanh n input
    gi_n + r gh_n."""
    n, h3 = gi.shape
    hd = h3 // 3
    half = gi.dtype.type(0.5)
    act = np.empty_like(gi)
    for b in range(n):
        for k in range(hd):
            r = half + half * trz[b, k]
            act[b, k] = r
            act[b, hd + k] = half + half * trz[b, hd + k]
            act[b, 2 * hd + k] = gi[b, 2 * hd + k] + r * gh[b, 2 * hd + k]
    return act


@kernel
def gru_cell_bwd(dh2, act, gh, h):
    """dh2 (N, H) output grad; act (N, 3H) r, z, n; gh (N, 3H); h (N, H) -> dgi (N, 3H),
    dgh (N, 3H), dh (N, H) (the direct path through z only)."""
    n, h3 = act.shape
    hd = h3 // 3
    one = act.dtype.type(1.0)
    dgi = np.empty_like(act)
    dgh = np.empty_like(act)
    dh = np.empty_like(h)
    for b in range(n):
        for k in range(hd):
            r = act[b, k]
            z = act[b, hd + k]
            nn = act[b, 2 * hd + k]
            g = dh2[b, k]
            dn = g * (one - z) * (one - nn * nn)
            dz = g * (h[b, k] - nn) * z * (one - z)
            dr = dn * gh[b, 2 * hd + k] * r * (one - r)
            dgi[b, k] = dr
            dgi[b, hd + k] = dz
            dgi[b, 2 * hd + k] = dn
            dgh[b, k] = dr
            dgh[b, hd + k] = dz
            dgh[b, 2 * hd + k] = dn * r
            dh[b, k] = g * z
    return dgi, dgh, dh
