"""Whole-sequence recurrences: LSTM, GRU and Elman RNN over precomputed input gates.

The input-to-hidden product of every step does not depend on the state, so callers form it for
all T steps with one GEMM (``xg = x W_ih^T + b_ih``, shape (T, N, G*H)) and hand it here. Each
op is then one graph node that loops over the steps with one small GEMM (h W_hh^T) plus the
fused Numba cell kernel each, forward and backward, and forms dW_hh with one GEMM over all
steps at the end. PyTorch's gate order: LSTM (i, f, g, o), GRU (r, z, n) with r applied to
``h W_hn^T + b_hn`` (ONNX's ``linear_before_reset=1``). The LSTM takes an optional projection
W_hr (torch's ``proj_size``): one more small GEMM per step each way, dW_hr one GEMM at the end.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels import rnn as K

__all__ = ["gru_seq", "lstm_seq", "rnn_seq"]


def _steps(t_len: int, reverse: bool) -> range:
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _h_prev(out: np.ndarray, h0: np.ndarray, reverse: bool) -> np.ndarray:
    """The state each step started from, stacked as (T, N, H)."""
    if reverse:
        return np.concatenate([out[1:], h0[None]], axis=0)
    return np.concatenate([h0[None], out[:-1]], axis=0)


def _dw_hh(dg: np.ndarray, out: np.ndarray, h0: np.ndarray, reverse: bool) -> np.ndarray:
    """sum_t dg_t^T h_{t-1} as one GEMM over all T*N rows."""
    hp = _h_prev(out, h0, reverse)
    return dg.reshape(-1, dg.shape[-1]).T @ hp.reshape(-1, hp.shape[-1])


def _prev(states: np.ndarray, t: int, init: np.ndarray, reverse: bool) -> np.ndarray:
    """The state step ``t`` started from: the one after the step before it, else ``init``."""
    s = t + 1 if reverse else t - 1
    return init if s < 0 or s >= len(states) else states[s]


class LSTMSeq(Op):
    """[i f g o] = (sig sig tanh sig)(xg_t + h W^T + b); c_t = f c + i g; m_t = o tanh(c_t);
    h_t = m_t, or m_t W_hr^T with a projection; dW_hr = sum_t dh_t^T m_t"""

    name, onnx, n_outputs = "lstm_seq", "LSTM", 3

    def forward(self, xg, h0, c0, w_hh, b_hh, w_hr=None, *, hidden_size, reverse=False):
        t_len, n, g4 = xg.shape
        hd = hidden_size
        # sigmoid(v) = (1 + tanh(v / 2)) / 2: the sigmoid gates' rows of W and of xg + b are
        # halved once here, so each step is one GEMM, one add and one SIMD tanh over all gates.
        half = np.ones(g4, xg.dtype)
        half[: 2 * hd] = half[3 * hd :] = 0.5
        w_half = w_hh * half[:, None]
        pre = (xg + b_hh) * half
        self.acts = acts = np.empty((t_len, n, g4), xg.dtype)  # the gates of every step
        self.cs = cs = np.empty((t_len, n, hd), xg.dtype)  # the cell after every step
        self.tcs = tcs = np.empty_like(cs)
        out = np.empty((t_len, n, hd if w_hr is None else w_hr.shape[0]), xg.dtype)
        # o tanh(c) of every step: the output itself unless projected
        self.ms = ms = out if w_hr is None else np.empty_like(cs)
        self.h0, self.c0 = h0, np.ascontiguousarray(c0)
        self.w_hh, self.w_hr, self.reverse = w_hh, w_hr, reverse
        h = h0
        for t in _steps(t_len, reverse):
            a = acts[t]
            np.matmul(h, w_half.T, out=a)
            a += pre[t]
            np.tanh(a, out=a)
            K.lstm_cell_fwd_into(a, _prev(cs, t, self.c0, reverse), cs[t])
            np.tanh(cs[t], out=tcs[t])
            np.multiply(a[:, 3 * hd :], tcs[t], out=ms[t])
            if w_hr is not None:
                np.matmul(ms[t], w_hr.T, out=out[t])
            h = out[t]
        self.out = out
        return out, h.copy(), cs[t].copy()

    def backward(self, dout, dhn, dcn):
        t_len, n, hd = self.cs.shape
        proj = self.w_hr is not None
        dg = np.empty((t_len, n, 4 * hd), self.out.dtype)
        dh = np.array(dhn, order="C")  # both carried gradients are updated in place
        dc = np.array(dcn, order="C")
        dout = np.ascontiguousarray(dout)
        if proj:  # the gradient of every step's h, for dW_hr; and the one of its m_t
            dhs, dm, zero = np.empty_like(self.out), np.empty_like(dc), np.zeros_like(dc)
        for t in _steps(t_len, not self.reverse):
            c_prev = _prev(self.cs, t, self.c0, self.reverse)
            if proj:
                np.add(dout[t], dh, out=dhs[t])
                np.matmul(dhs[t], self.w_hr, out=dm)
                K.lstm_cell_bwd_into(dm, zero, dc, self.acts[t], c_prev, self.tcs[t], dg[t], dc)
            else:
                K.lstm_cell_bwd_into(dout[t], dh, dc, self.acts[t], c_prev, self.tcs[t], dg[t],
                                     dc)  # fmt: skip
            np.matmul(dg[t], self.w_hh, out=dh)
        nd = self.needs
        grads = (
            dg,
            dh if nd[1] else None,
            dc if nd[2] else None,
            _dw_hh(dg, self.out, self.h0, self.reverse) if nd[3] else None,
            dg.sum(axis=(0, 1)) if nd[4] else None,
        )
        if not proj:
            return grads
        p = self.out.shape[2]
        dw_hr = dhs.reshape(-1, p).T @ self.ms.reshape(-1, hd) if nd[5] else None
        return (*grads, dw_hr)


class GRUSeq(Op):
    """[r z] = sigmoid(xg + h W^T + b); n = tanh(xg_n + r (h W_n^T + b_n)); h_t = (1-z) n + z h"""

    name, onnx, n_outputs = "gru_seq", "GRU", 2

    def forward(self, xg, h0, w_hh, b_hh, hidden_size, reverse=False):
        t_len, n, _ = xg.shape
        hd = hidden_size
        xg = np.ascontiguousarray(xg)
        self.h0, self.w_hh, self.reverse = np.ascontiguousarray(h0), w_hh, reverse
        out = np.empty((t_len, n, hd), xg.dtype)
        self.acts, self.ghs = [None] * t_len, [None] * t_len
        h = self.h0
        for t in _steps(t_len, reverse):
            gi = xg[t]
            gh = h @ w_hh.T
            gh += b_hh
            trz = gi[:, : 2 * hd] + gh[:, : 2 * hd]
            trz *= 0.5
            np.tanh(trz, out=trz)  # sigmoid via SIMD tanh, as in the LSTM
            act = K.gru_cell_fwd(trz, gi, gh)
            nn, z = act[:, 2 * hd :], act[:, hd : 2 * hd]
            np.tanh(nn, out=nn)
            ht = out[t]
            np.subtract(h, nn, out=ht)  # h' = (1 - z) n + z h = n + z (h - n)
            ht *= z
            ht += nn
            h = ht
            self.acts[t], self.ghs[t] = act, gh
        self.out = out
        return out, h.copy()

    def backward(self, dout, dhn):
        t_len, n, hd = self.out.shape
        dgi = np.empty((t_len, n, 3 * hd), self.out.dtype)
        dgh = np.empty_like(dgi)
        hp = _h_prev(self.out, self.h0, self.reverse)
        dh = dhn
        for t in _steps(t_len, not self.reverse):
            dgi[t], dgh[t], dh = K.gru_cell_bwd(dout[t] + dh, self.acts[t], self.ghs[t], hp[t])
            dh += dgh[t] @ self.w_hh
        nd = self.needs
        return (
            dgi,
            dh if nd[1] else None,
            dgh.reshape(-1, 3 * hd).T @ hp.reshape(-1, hd) if nd[2] else None,
            dgh.sum(axis=(0, 1)) if nd[3] else None,
        )


class RNNSeq(Op):
    """h_t = act(xg_t + h_{t-1} W^T + b), act tanh|relu; dp_t = (g_t + dh_t) act'; dh = dp_t W"""

    name, onnx, n_outputs = "rnn_seq", "RNN", 2

    def forward(self, xg, h0, w_hh, b_hh, hidden_size, reverse=False, nonlinearity="tanh"):
        t_len, n, hd = xg.shape
        self.h0, self.w_hh, self.reverse = h0, w_hh, reverse
        self.relu = nonlinearity == "relu"
        out = np.empty((t_len, n, hd), xg.dtype)
        h = h0
        for t in _steps(t_len, reverse):
            pre = h @ w_hh.T
            pre += xg[t]
            pre += b_hh
            if self.relu:
                np.maximum(pre, 0, out=out[t])
            else:
                np.tanh(pre, out=out[t])
            h = out[t]
        self.out = out
        return out, h.copy()

    def backward(self, dout, dhn):
        t_len = self.out.shape[0]
        dp = np.empty_like(self.out)
        dh = dhn
        one = self.out.dtype.type(1)
        for t in _steps(t_len, not self.reverse):
            ht = self.out[t]
            d = dout[t] + dh
            if self.relu:
                d *= ht > 0
            else:
                d *= one - ht * ht
            dp[t] = d
            dh = d @ self.w_hh
        nd = self.needs
        return (
            dp,
            dh if nd[1] else None,
            _dw_hh(dp, self.out, self.h0, self.reverse) if nd[2] else None,
            dp.sum(axis=(0, 1)) if nd[3] else None,
        )


# -- functional API -------------------------------------------------------------------------


def _check(opname: str, gates: int, xg, states: list, w_hh, b_hh, w_hr=None):
    """Validate shapes/dtypes, fill None states and bias with zeros; returns
    (xg, states, w_hh, b_hh, hidden_size, w_hr). With a projection ``w_hr`` (P, hidden), w_hh
    is (gates*hidden, P) and the first state (h) is (N, P)."""
    xg = lift(xg)
    if xg.dtype.kind != "f":
        raise BpcliError(f"needs float input gates, got {xg.dtype}", opname)
    w_hh = lift(w_hh, xg)
    if w_hr is None:
        if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] != gates * w_hh.shape[1]:
            raise BpcliError(f"w_hh must be ({gates}*hidden, hidden), got {w_hh.shape}", opname)
        hid = out = w_hh.shape[1]
    else:
        w_hr = lift(w_hr, xg)
        if w_hr.ndim != 2 or 0 in w_hr.shape:
            raise BpcliError(f"w_hr must be (proj, hidden), got {w_hr.shape}", opname)
        out, hid = w_hr.shape
        if w_hh.shape != (gates * hid, out):
            raise BpcliError(f"w_hh must be ({gates}*hidden, proj) = {(gates * hid, out)} for "
                             f"w_hr {w_hr.shape}, got {w_hh.shape}", opname)  # fmt: skip
    if xg.ndim != 3 or xg.shape[2] != gates * hid:
        raise BpcliError(
            f"input gates must be (T, N, {gates * hid}) for w_hh {w_hh.shape}, got {xg.shape}",
            opname,
        )
    if xg.shape[0] == 0:
        raise BpcliError(f"the sequence is empty (input gates {xg.shape})", opname)
    n = xg.shape[1]
    st = []
    for k, (name, s) in enumerate(states):
        want = (n, out if k == 0 else hid)
        s = const(np.zeros(want, xg.dtype)) if s is None else lift(s, xg)
        if s.shape != want:
            raise BpcliError(f"{name} has shape {s.shape}, expected {want}", opname)
        st.append(s)
    b_hh = const(np.zeros(gates * hid, xg.dtype)) if b_hh is None else lift(b_hh, xg)
    if b_hh.shape != (gates * hid,):
        raise BpcliError(f"b_hh has shape {b_hh.shape}, expected ({gates * hid},)", opname)
    for t in (w_hh, *st, b_hh, *([] if w_hr is None else [w_hr])):
        if t.dtype != xg.dtype:
            raise BpcliError(f"dtype mismatch: input gates are {xg.dtype}, got {t.dtype}", opname)
    return xg, st, w_hh, b_hh, hid, w_hr


def lstm_seq(
    xg, h0, c0, w_hh, b_hh=None, reverse: bool = False, w_hr=None
) -> tuple[Tensor, Tensor, Tensor]:
    """An LSTM layer (one direction) over precomputed input gates, as ``torch.nn.LSTM`` runs it.

    Args:
        xg: (T, N, 4*hidden) input gates ``x W_ih^T + b_ih`` of all steps, gate order i, f, g, o.
        h0, c0: (N, out) and (N, hidden) initial states, out = proj if w_hr else hidden; None
            means zeros.
        w_hh: (4*hidden, out) hidden-to-hidden weights.
        b_hh: (4*hidden,) or None.
        reverse: run from step T-1 down to 0 (the backward direction of a bidirectional LSTM).
        w_hr: (proj, hidden) projection of the hidden state (``proj_size`` in torch), or None.

    Returns:
        ``(out, h_n, c_n)``: out (T, N, out) the hidden state of every step (in input order),
        h_n (N, out) and c_n (N, hidden) the states after the last step processed.
    """
    xg, (h0, c0), w_hh, b_hh, hid, w_hr = _check(
        "lstm_seq", 4, xg, [("h0", h0), ("c0", c0)], w_hh, b_hh, w_hr
    )
    extra = () if w_hr is None else (w_hr,)
    return LSTMSeq.apply(xg, h0, c0, w_hh, b_hh, *extra, hidden_size=hid, reverse=bool(reverse))


def gru_seq(xg, h0, w_hh, b_hh=None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """A GRU layer (one direction) over precomputed input gates, as ``torch.nn.GRU`` runs it.

    Args:
        xg: (T, N, 3*hidden) input gates ``x W_ih^T + b_ih`` of all steps, gate order r, z, n.
        h0: (N, hidden) initial state; None means zeros.
        w_hh: (3*hidden, hidden) hidden-to-hidden weights.
        b_hh: (3*hidden,) or None.
        reverse: run from step T-1 down to 0.

    Returns:
        ``(out, h_n)``: out (T, N, hidden) every step's state, h_n (N, hidden) the last one.
    """
    xg, (h0,), w_hh, b_hh, hid, _ = _check("gru_seq", 3, xg, [("h0", h0)], w_hh, b_hh)
    return GRUSeq.apply(xg, h0, w_hh, b_hh, hidden_size=hid, reverse=bool(reverse))


def rnn_seq(
    xg, h0, w_hh, b_hh=None, reverse: bool = False, nonlinearity: str = "tanh"
) -> tuple[Tensor, Tensor]:
    """An Elman RNN layer (one direction) over precomputed inputs, as ``torch.nn.RNN`` runs it.

    Args:
        xg: (T, N, hidden) ``x W_ih^T + b_ih`` of all steps.
        h0: (N, hidden) initial state; None means zeros.
        w_hh: (hidden, hidden) hidden-to-hidden weights.
        b_hh: (hidden,) or None.
        reverse: run from step T-1 down to 0.
        nonlinearity: "tanh" or "relu".

    Returns:
        ``(out, h_n)``: out (T, N, hidden) every step's state, h_n (N, hidden) the last one.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise BpcliError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}", "rnn_seq")
    xg, (h0,), w_hh, b_hh, hid, _ = _check("rnn_seq", 1, xg, [("h0", h0)], w_hh, b_hh)
    return RNNSeq.apply(
        xg, h0, w_hh, b_hh, hidden_size=hid, reverse=bool(reverse), nonlinearity=nonlinearity
    )
