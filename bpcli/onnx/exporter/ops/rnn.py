"""ONNX emitters of the recurrences: lstm_seq, gru_seq, rnn_seq, and the one-step lstm_cell and
gru_cell (an ONNX LSTM/GRU over a sequence of length 1).

The engine's recurrences take precomputed input gates ``xg = x W_ih^T + b_ih`` (the preceding
``linear`` op). ONNX LSTM/GRU/RNN take the layer input and W_ih themselves, so ``xg`` is fed as
X with a constant permutation matrix as W: it reorders torch's gate blocks (LSTM i f g o, GRU
r z n) into ONNX's (i o f c, z r h); the recurrent weights and biases are reordered in the graph
by a Gather on their initializers, which keep their state_dict names.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter, unsupported

# engine gate block at each ONNX gate position
LSTM_ORDER = (0, 3, 1, 2)  # i f g o -> i o f c
GRU_ORDER = (1, 0, 2)  # r z n -> z r h


def _rows(order, hid: int) -> np.ndarray:
    return np.concatenate([np.arange(b * hid, (b + 1) * hid) for b in order]).astype(np.int64)


def _recurrence(ctx, rec, ins, op_type, order, n_states, **attrs):
    hid, dt = rec.attrs["hidden_size"], dtype_of(rec)
    rows = _rows(order, hid)
    size = len(rows)
    w = ctx.const(np.eye(size, dtype=dt)[rows][None], "identity_w")
    w_hh, b_hh = 1 + n_states, 2 + n_states
    r = ctx.unsqueeze(ctx.node("Gather", [ins[w_hh], ctx.ints(rows)], axis=0), [0])
    bias = ""
    if not ctx.is_zero_const(rec, b_hh):
        rb = ctx.node("Gather", [ins[b_hh], ctx.ints(rows)], axis=0)
        bias = ctx.unsqueeze(ctx.node("Concat", [ctx.const(np.zeros(size, dt), "zeros"), rb],
                                      axis=0), [0])  # fmt: skip
    states = [
        "" if ctx.is_zero_const(rec, i) else ctx.unsqueeze(ins[i], [0])
        for i in range(1, 1 + n_states)
    ]
    args = [ins[0], w, r, bias, "", *states]
    while args[-1] == "":
        args.pop()
    direction = "reverse" if rec.attrs.get("reverse") else "forward"
    outs = ctx.node(op_type, args, n_out=1 + n_states, hidden_size=hid, direction=direction,
                    **attrs)  # fmt: skip
    return [ctx.squeeze(outs[0], [1])] + [ctx.squeeze(o, [0]) for o in outs[1:]]


@emitter("lstm_seq")
def _lstm(ctx, rec, ins):
    if len(ins) > 5:  # a 6th input is the projection weight W_hr, which ONNX LSTM lacks
        unsupported(rec, "ONNX LSTM has no projection: export of LSTMs with proj_size > 0 is "
                    "not supported")  # fmt: skip
    return _recurrence(ctx, rec, ins, "LSTM", LSTM_ORDER, 2)


@emitter("gru_seq")
def _gru(ctx, rec, ins):
    return _recurrence(ctx, rec, ins, "GRU", GRU_ORDER, 1, linear_before_reset=1)


@emitter("rnn_seq")
def _rnn(ctx, rec, ins):
    act = "Relu" if rec.attrs.get("nonlinearity") == "relu" else "Tanh"
    return _recurrence(ctx, rec, ins, "RNN", (0,), 1, activations=[act])


def _cell(ctx, rec, ins, op_type, order, n_states, **attrs):
    """One step as ONNX op_type over a length-1 sequence: W, R and B are the cell's own
    weights with their gate blocks reordered by a Gather (so they keep their names)."""
    hid = rec.inputs[1 + n_states].shape[0] // len(order)
    rows = ctx.ints(_rows(order, hid))
    w_ih, w_hh, b_ih, b_hh = ins[1 + n_states : 5 + n_states]
    w, r = (ctx.unsqueeze(ctx.node("Gather", [m, rows], axis=0), [0]) for m in (w_ih, w_hh))
    bias = ""
    if not (ctx.is_zero_const(rec, 3 + n_states) and ctx.is_zero_const(rec, 4 + n_states)):
        parts = [ctx.node("Gather", [b, rows], axis=0) for b in (b_ih, b_hh)]
        bias = ctx.unsqueeze(ctx.node("Concat", parts, axis=0), [0])
    states = [
        "" if ctx.is_zero_const(rec, i) else ctx.unsqueeze(ins[i], [0])
        for i in range(1, 1 + n_states)
    ]
    args = [ctx.unsqueeze(ins[0], [0]), w, r, bias, "", *states]
    while args[-1] == "":
        args.pop()
    outs = ctx.node(op_type, args, n_out=1 + n_states, hidden_size=hid, **attrs)
    finals = [ctx.squeeze(o, [0]) for o in outs[1:]]
    return finals if n_states > 1 else finals[0]


@emitter("lstm_cell")
def _lstm_cell(ctx, rec, ins):
    return _cell(ctx, rec, ins, "LSTM", LSTM_ORDER, 2)


@emitter("gru_cell")
def _gru_cell(ctx, rec, ins):
    return _cell(ctx, rec, ins, "GRU", GRU_ORDER, 1, linear_before_reset=1)
