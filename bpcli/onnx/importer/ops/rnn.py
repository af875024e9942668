"""Import of LSTM, GRU and RNN onto the engine's whole-sequence ops.

ONNX orders the gates LSTM (i, o, f, c), GRU (z, r, h); the engine (as PyTorch) LSTM (i, f, g, o),
GRU (r, z, n). The weights are re-ordered with differentiable slicing, so gradients reach the
ONNX initializers themselves. A GRU with ``linear_before_reset=0`` (ONNX's default, not
PyTorch's) and an LSTM with peepholes (input P) run as step-by-step compositions.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.engine.convert import const
from bpcli.onnx.importer.table import NodeView, register

_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _check(node: NodeView) -> str | None:
    acts = node.attr("activations")
    n = len(_DEFAULT_ACTS[node.op_type])
    dirs = 2 if node.attr("direction") == "bidirectional" else 1
    if acts is not None and node.op_type == "RNN":
        if any(a not in ("Tanh", "Relu") for a in acts) or len(set(acts)) > 1:
            return f"activations {acts} (Tanh or Relu, the same for both directions)"
    elif acts is not None and list(acts) != _DEFAULT_ACTS[node.op_type] * (len(acts) // n):
        return f"activations {acts} (only the default {_DEFAULT_ACTS[node.op_type]})"
    if node.attr("clip") is not None:
        return "cell clip is not implemented"
    if node.attr("input_forget", 0):
        return "input_forget is not implemented"
    del dirs
    return None


def _reorder(t, kind, hid, axis):
    """Re-order the gate blocks of ``t`` along ``axis`` from ONNX's order to the engine's."""
    order = _ORDER[kind]
    if order == tuple(range(len(order))):
        return t
    idx = np.concatenate([np.arange(g * hid, (g + 1) * hid) for g in order])
    return F.getitem(t, (slice(None),) * axis + (idx,))


@register("LSTM", "GRU", "RNN", since=7, check=_check)
def recurrent(ctx, node, inputs):
    kind = node.op_type
    x, w, r = inputs[:3]
    b = inputs[3] if len(inputs) > 3 else None
    seq_lens = inputs[4] if len(inputs) > 4 else None
    h0 = inputs[5] if len(inputs) > 5 else None
    c0 = inputs[6] if len(inputs) > 6 else None
    p = inputs[7] if len(inputs) > 7 else None
    layout = node.attr("layout", 0)
    if layout:
        x = F.permute(x, 1, 0, 2)
        h0 = F.permute(h0, 1, 0, 2) if h0 is not None else None
        c0 = F.permute(c0, 1, 0, 2) if c0 is not None else None
    t_len = x.shape[0]
    if seq_lens is not None and np.any(seq_lens.data != t_len):
        raise node.fail("sequence_lens shorter than the sequence are not implemented")
    hid = node.attr("hidden_size") or r.shape[-1]
    direction = node.attr("direction", "forward")
    dirs = [True] if direction == "reverse" else [False, True][: 2 if direction == "bidirectional"
                                                                  else 1]  # fmt: skip
    g = len(_ORDER[kind])
    ys, hs, cs = [], [], []
    for d, reverse in enumerate(dirs):
        w_d = _reorder(F.getitem(w, d), kind, hid, 0)
        r_d = _reorder(F.getitem(r, d), kind, hid, 0)
        xg = F.matmul(x, F.t(w_d))
        b_hh = None
        if b is not None:
            b_d = F.getitem(b, d)
            xg = F.add(xg, _reorder(F.getitem(b_d, slice(0, g * hid)), kind, hid, 0))
            b_hh = _reorder(F.getitem(b_d, slice(g * hid, 2 * g * hid)), kind, hid, 0)
        h_init = F.getitem(h0, d) if h0 is not None else None
        if kind == "LSTM":
            c_init = F.getitem(c0, d) if c0 is not None else None
            if p is not None:
                y, h, c = _lstm_peephole(xg, h_init, c_init, r_d, b_hh, F.getitem(p, d), reverse)
            else:
                y, h, c = F.lstm_seq(xg, h_init, c_init, r_d, b_hh, reverse)
            cs.append(F.unsqueeze(c, 0))
        elif kind == "GRU" and not node.attr("linear_before_reset", 0):
            y, h = _gru_reset_first(xg, h_init, r_d, b_hh, hid, reverse)
        elif kind == "GRU":
            y, h = F.gru_seq(xg, h_init, r_d, b_hh, reverse)
        else:
            acts = node.attr("activations") or ["Tanh"]
            y, h = F.rnn_seq(xg, h_init, r_d, b_hh, reverse, acts[0].lower())
        ys.append(F.unsqueeze(y, 1))
        hs.append(F.unsqueeze(h, 0))
    y = F.concat(ys, 1) if len(ys) > 1 else ys[0]
    h = F.concat(hs, 0) if len(hs) > 1 else hs[0]
    c = (F.concat(cs, 0) if len(cs) > 1 else cs[0]) if cs else None
    if layout:
        y = F.permute(y, 2, 0, 1, 3)
        h = F.permute(h, 1, 0, 2)
        c = F.permute(c, 1, 0, 2) if c is not None else None
    return (y, h, c) if kind == "LSTM" else (y, h)


def _gru_reset_first(xg, h, r_w, b_hh, hid, reverse):
    """ONNX GRU with linear_before_reset=0: h~ = tanh(x W_h + (r * h) R_h^T + Rb_h)."""
    n = xg.shape[1]
    if h is None:
        h = const(np.zeros((n, hid), xg.dtype))
    rw_rz = F.getitem(r_w, slice(0, 2 * hid))
    rw_n = F.getitem(r_w, slice(2 * hid, 3 * hid))
    b_rz = F.getitem(b_hh, slice(0, 2 * hid)) if b_hh is not None else None
    b_n = F.getitem(b_hh, slice(2 * hid, 3 * hid)) if b_hh is not None else None
    steps = range(xg.shape[0] - 1, -1, -1) if reverse else range(xg.shape[0])
    outs = [None] * xg.shape[0]
    for t in steps:
        x_t = F.getitem(xg, t)
        rz = F.add(
            F.getitem(x_t, (slice(None), slice(0, 2 * hid))), F.matmul(h, F.t(rw_rz))
        )
        rz = F.sigmoid(F.add(rz, b_rz) if b_rz is not None else rz)
        rr = F.getitem(rz, (slice(None), slice(0, hid)))
        z = F.getitem(rz, (slice(None), slice(hid, 2 * hid)))
        cand = F.matmul(F.mul(rr, h), F.t(rw_n))
        cand = F.add(cand, b_n) if b_n is not None else cand
        cand = F.tanh(F.add(F.getitem(x_t, (slice(None), slice(2 * hid, 3 * hid))), cand))
        h = F.add(F.mul(F.sub(1.0, z), cand), F.mul(z, h))
        outs[t] = h
    return F.stack(outs, 0), h


def _lstm_peephole(xg, h, c, r_w, b_hh, p, reverse):
    """ONNX LSTM with peepholes P = (p_i, p_o, p_f): i and f see c_{t-1}, o sees c_t;
    ``xg`` and ``r_w`` are in the engine's gate order (i, f, g, o)."""
    n, hid = xg.shape[1], r_w.shape[1]
    zeros = const(np.zeros((n, hid), xg.dtype))
    h = zeros if h is None else h
    c = zeros if c is None else c
    p_i, p_o, p_f = (F.getitem(p, slice(k * hid, (k + 1) * hid)) for k in range(3))
    steps = range(xg.shape[0] - 1, -1, -1) if reverse else range(xg.shape[0])
    outs = [None] * xg.shape[0]
    for t in steps:
        gates = F.add(F.getitem(xg, t), F.matmul(h, F.t(r_w)))
        gates = F.add(gates, b_hh) if b_hh is not None else gates
        gi, gf, gg, go = (F.getitem(gates, (slice(None), slice(k * hid, (k + 1) * hid)))
                          for k in range(4))  # fmt: skip
        i = F.sigmoid(F.add(gi, F.mul(p_i, c)))
        f = F.sigmoid(F.add(gf, F.mul(p_f, c)))
        c = F.add(F.mul(f, c), F.mul(i, F.tanh(gg)))
        h = F.mul(F.sigmoid(F.add(go, F.mul(p_o, c))), F.tanh(c))
        outs[t] = h
    return F.stack(outs, 0), h, c
