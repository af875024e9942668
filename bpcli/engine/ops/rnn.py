"""Recurrent cells: one LSTM or GRU step with PyTorch's weight layout and gate order.

Each cell is one primitive: the two matrix products go to BLAS through numpy and the gate
nonlinearities and state update (forward and backward) run in one fused Numba pass. One node
per step instead of ~15 keeps a long unrolled sequence cheap to record and walk. ONNX's LSTM/GRU
operators take whole sequences, so a single cell exports as a composition (onnx = None).
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops import shape as shape_ops
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels import rnn as K

__all__ = ["gru_cell", "lstm_cell"]


def _gemm_in(x, h, w_ih, w_hh, b_ih, b_hh):
    """x W_ih^T + h W_hh^T + b_ih + b_hh, in one output buffer."""
    out = x @ w_ih.T
    out += h @ w_hh.T
    out += b_ih
    out += b_hh
    return out


class LSTMCell(Op):
    """(h', c') = lstm(x, h, c): gates = x Wi^T + h Wh^T + bi + bh -> i, f, g, o;
    c' = f c + i g, h' = o tanh(c'); backward: dgates by the chain rule, then dW = dgates^T [x|h]"""

    name, onnx, n_outputs = "lstm_cell", "LSTM", 2

    def forward(self, x, h, c, w_ih, w_hh, b_ih, b_hh):
        self.x, self.h, self.w_ih, self.w_hh = x, h, w_ih, w_hh
        gates = _gemm_in(x, h, w_ih, w_hh, b_ih, b_hh)
        hd = gates.shape[1] // 4
        # sigmoid(v) = (1 + tanh(v / 2)) / 2: one SIMD tanh pass over all four gates.
        gates[:, : 2 * hd] *= 0.5
        gates[:, 3 * hd :] *= 0.5
        np.tanh(gates, out=gates)
        self.c = c = np.ascontiguousarray(c)
        self.act, c2 = K.lstm_cell_fwd(gates, c)
        self.tc = np.tanh(c2)
        return self.act[:, 3 * hd :] * self.tc, c2

    def backward(self, dh, dc):
        dgates, dcp = K.lstm_cell_bwd(
            np.ascontiguousarray(dh), np.ascontiguousarray(dc), self.act, self.c, self.tc
        )
        nd = self.needs
        db = dgates.sum(axis=0) if nd[5] or nd[6] else None
        return (
            dgates @ self.w_ih if nd[0] else None,
            dgates @ self.w_hh if nd[1] else None,
            dcp if nd[2] else None,
            dgates.T @ self.x if nd[3] else None,
            dgates.T @ self.h if nd[4] else None,
            db if nd[5] else None,
            db if nd[6] else None,
        )


class GRUCell(Op):
    """h' = gru(x, h): r, z = sigmoid(gi + gh), n = tanh(gi_n + r gh_n), h' = (1 - z) n + z h
    with gi = x Wi^T + bi, gh = h Wh^T + bh; backward: dgi, dgh by the chain rule, then dW"""

    name, onnx = "gru_cell", "GRU"

    def forward(self, x, h, w_ih, w_hh, b_ih, b_hh):
        self.x, self.w_ih, self.w_hh = x, w_ih, w_hh
        gi = x @ w_ih.T
        gi += b_ih
        gh = h @ w_hh.T
        gh += b_hh
        hd = gi.shape[1] // 3
        trz = gi[:, : 2 * hd] + gh[:, : 2 * hd]
        trz *= 0.5
        np.tanh(trz, out=trz)  # sigmoid via SIMD tanh, as in LSTMCell
        self.act = act = K.gru_cell_fwd(trz, gi, gh)
        nn, z = act[:, 2 * hd :], act[:, hd : 2 * hd]
        np.tanh(nn, out=nn)
        self.h = h = np.ascontiguousarray(h)
        self.gh = gh
        h2 = h - nn  # h' = (1 - z) n + z h = n + z (h - n)
        h2 *= z
        h2 += nn
        return h2

    def backward(self, g):
        dgi, dgh, dh = K.gru_cell_bwd(np.ascontiguousarray(g), self.act, self.gh, self.h)
        nd = self.needs
        x, h, w_ih, w_hh = self.x, self.h, self.w_ih, self.w_hh
        if nd[1]:
            dh += dgh @ w_hh
        return (
            dgi @ w_ih if nd[0] else None,
            dh if nd[1] else None,
            dgi.T @ x if nd[2] else None,
            dgh.T @ h if nd[3] else None,
            dgi.sum(axis=0) if nd[4] else None,
            dgh.sum(axis=0) if nd[5] else None,
        )


# -- functional API -------------------------------------------------------------------------


def _check(opname: str, gates: int, x: Tensor, states: list, w_ih, w_hh, b_ih, b_hh):
    """Validate shapes/dtypes; returns (x, states, w_ih, w_hh, b_ih, b_hh, unbatched)."""
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float input, got {x.dtype}", opname)
    if x.ndim not in (1, 2):
        raise BpcliError(f"input must be (N, input_size) or (input_size,), got {x.shape}", opname)
    w_ih, w_hh = lift(w_ih, x), lift(w_hh, x)
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_ih.shape[0] % gates or w_hh.shape[0] != w_ih.shape[0]:
        raise BpcliError(
            f"w_ih {w_ih.shape} and w_hh {w_hh.shape} must be ({gates}*hidden, input) and "
            f"({gates}*hidden, hidden)",
            opname,
        )
    hid = w_ih.shape[0] // gates
    unbatched = x.ndim == 1
    n = 1 if unbatched else x.shape[0]
    if w_ih.shape[1] != x.shape[-1] or w_hh.shape[1] != hid:
        raise BpcliError(
            f"w_ih {w_ih.shape}, w_hh {w_hh.shape} do not fit input {x.shape} "
            f"and hidden size {hid}",
            opname,
        )
    st = []
    for name, s in states:
        if s is None:
            s = const(np.zeros((n, hid), x.dtype))
        else:
            s = lift(s, x)
            if s.shape != ((hid,) if unbatched else (n, hid)):
                raise BpcliError(f"{name} has shape {s.shape}, expected ({n}, {hid})", opname)
        st.append(s)
    bs = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is None:
            b = const(np.zeros(gates * hid, x.dtype))
        else:
            b = lift(b, x)
            if b.shape != (gates * hid,):
                raise BpcliError(f"{name} has shape {b.shape}, expected ({gates * hid},)", opname)
        bs.append(b)
    for t in (w_ih, w_hh, *st, *bs):
        if t.dtype != x.dtype:
            raise BpcliError(
                f"dtype mismatch: input is {x.dtype}, a parameter is {t.dtype}", opname
            )
    return st, w_ih, w_hh, bs[0], bs[1], unbatched


def lstm_cell(
    input,
    hx=None,
    cx=None,
    w_ih=None,
    w_hh=None,
    b_ih=None,
    b_hh=None,
):
    """One LSTM step as ``torch.nn.LSTMCell``: returns ``(h', c')``.

    Args:
        input: (N, input_size) or (input_size,).
        hx, cx: (N, hidden) states; None means zeros.
        w_ih: (4*hidden, input_size), w_hh: (4*hidden, hidden), gates in the order i, f, g, o.
        b_ih, b_hh: (4*hidden,) or None.
    """
    x = lift(input)
    if w_ih is None or w_hh is None:
        raise BpcliError("w_ih and w_hh are required", "lstm_cell")
    (h, c), w_ih, w_hh, b_ih, b_hh, unbatched = _check(
        "lstm_cell", 4, x, [("hx", hx), ("cx", cx)], w_ih, w_hh, b_ih, b_hh
    )
    if unbatched:
        return _unbatched(LSTMCell, x, h, c, w_ih, w_hh, b_ih, b_hh)
    return LSTMCell.apply(x, h, c, w_ih, w_hh, b_ih, b_hh)


def gru_cell(
    input,
    hx=None,
    w_ih=None,
    w_hh=None,
    b_ih=None,
    b_hh=None,
):
    """One GRU step as ``torch.nn.GRUCell``: returns ``h'``.

    Args:
        input: (N, input_size) or (input_size,).
        hx: (N, hidden) state; None means zeros.
        w_ih: (3*hidden, input_size), w_hh: (3*hidden, hidden), gates in the order r, z, n.
        b_ih, b_hh: (3*hidden,) or None.
    """
    x = lift(input)
    if w_ih is None or w_hh is None:
        raise BpcliError("w_ih and w_hh are required", "gru_cell")
    (h,), w_ih, w_hh, b_ih, b_hh, unbatched = _check(
        "gru_cell", 3, x, [("hx", hx)], w_ih, w_hh, b_ih, b_hh
    )
    if unbatched:
        return _unbatched(GRUCell, x, h, w_ih, w_hh, b_ih, b_hh)
    return GRUCell.apply(x, h, w_ih, w_hh, b_ih, b_hh)


def _unbatched(cls, x, *rest):
    """A 1-d input (and states) as a batch of one, through reshape ops of the engine."""
    n_states = 2 if cls is LSTMCell else 1
    states = [s if s.ndim == 2 else shape_ops.reshape(s, (1, -1)) for s in rest[:n_states]]
    out = cls.apply(shape_ops.reshape(x, (1, -1)), *states, *rest[n_states:])
    if isinstance(out, tuple):
        return tuple(shape_ops.reshape(o, (-1,)) for o in out)
    return shape_ops.reshape(out, (-1,))
