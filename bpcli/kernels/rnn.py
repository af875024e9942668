"""Fused LSTM and GRU cell nonlinearities and state updates, forward and backward.

The matrix products stay in numpy (BLAS); these kernels do the per-element gate maths in one
pass, so a cell step makes no temporaries besides its outputs and the saved activations.
PyTorch's gate order: LSTM (i, f, g, o), GRU (r, z, n).
"""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def lstm_cell_fwd(gates, c):
    """gates (N, 4H) pre-activations, c (N, H), C-contiguous, one dtype -> h (N, H), c' (N, H),
    act (N, 4H) activated gates, tanh(c') (N, H)."""
    n, h4 = gates.shape
    hd = h4 // 4
    one = gates.dtype.type(1.0)
    h = np.empty_like(c)
    c2 = np.empty_like(c)
    tc = np.empty_like(c)
    act = np.empty_like(gates)
    for b in range(n):
        for k in range(hd):
            i = one / (one + np.exp(-gates[b, k]))
            f = one / (one + np.exp(-gates[b, hd + k]))
            g = np.tanh(gates[b, 2 * hd + k])
            o = one / (one + np.exp(-gates[b, 3 * hd + k]))
            cn = f * c[b, k] + i * g
            t = np.tanh(cn)
            act[b, k] = i
            act[b, hd + k] = f
            act[b, 2 * hd + k] = g
            act[b, 3 * hd + k] = o
            c2[b, k] = cn
            tc[b, k] = t
            h[b, k] = o * t
    return h, c2, act, tc


@kernel
def lstm_cell_bwd(dh, dc, act, c, tc):
    """dh, dc (N, H) output grads; act (N, 4H), c (N, H) previous cell, tc (N, H) tanh(c') from
    the forward -> dgates (N, 4H) pre-activation grads, dc_prev (N, H)."""
    n, h4 = act.shape
    hd = h4 // 4
    one = act.dtype.type(1.0)
    dgates = np.empty_like(act)
    dcp = np.empty_like(c)
    for b in range(n):
        for k in range(hd):
            i = act[b, k]
            f = act[b, hd + k]
            g = act[b, 2 * hd + k]
            o = act[b, 3 * hd + k]
            t = tc[b, k]
            dhv = dh[b, k]
            dct = dc[b, k] + dhv * o * (one - t * t)
            dgates[b, k] = dct * g * i * (one - i)
            dgates[b, hd + k] = dct * c[b, k] * f * (one - f)
            dgates[b, 2 * hd + k] = dct * i * (one - g * g)
            dgates[b, 3 * hd + k] = dhv * t * o * (one - o)
            dcp[b, k] = dct * f
    return dgates, dcp


@kernel
def gru_cell_fwd(gi, gh, h):
    """gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh (N, 3H), h (N, H), C-contiguous, one dtype ->
    h' (N, H), act (N, 3H) holding r, z, n."""
    n, h3 = gi.shape
    hd = h3 // 3
    one = gi.dtype.type(1.0)
    h2 = np.empty_like(h)
    act = np.empty_like(gi)
    for b in range(n):
        for k in range(hd):
            r = one / (one + np.exp(-(gi[b, k] + gh[b, k])))
            z = one / (one + np.exp(-(gi[b, hd + k] + gh[b, hd + k])))
            nn = np.tanh(gi[b, 2 * hd + k] + r * gh[b, 2 * hd + k])
            act[b, k] = r
            act[b, hd + k] = z
            act[b, 2 * hd + k] = nn
            h2[b, k] = (one - z) * nn + z * h[b, k]
    return h2, act


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
