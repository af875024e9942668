"""RNN, LSTM, GRU: PyTorch's classes, arguments, parameter names, gate order and init.

Per layer and direction the input-to-hidden product for all time steps is one GEMM (a
``linear`` op over T*N rows); the recurrence over the precomputed input gates is then one graph
node that loops over the steps with one small GEMM (h W_hh^T) plus the fused Numba cell kernel
each, forward and backward, and forms dW_hh with one GEMM over all steps at the end.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.errors import BpcliError
from bpcli.kernels import rnn as K
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter

__all__ = ["GRU", "LAYERS", "LSTM", "RNN"]


# -- the recurrence over precomputed input gates -------------------------------------------
# NOTE: these ops are unnamed (not in OPS): they belong in engine/ops/rnn.py as registered
# sequence ops (ONNX LSTM/GRU/RNN); see the report to the lead.


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


class _LSTMRecurrence(Op):
    """(out, h_n, c_n) = lstm over xg (T, N, 4H) = x W_ih^T + b_ih, from (h0, c0), with W_hh, b_hh;
    backward: per step the fused cell VJP and dh = dgates W_hh, then dW_hh in one GEMM"""

    n_outputs = 3

    def forward(self, xg, h0, c0, w_hh, b_hh, reverse=False):
        t_len, n, g4 = xg.shape
        hd = g4 // 4
        xg = np.ascontiguousarray(xg)
        self.h0, self.w_hh, self.reverse = h0, w_hh, reverse
        out = np.empty((t_len, n, hd), xg.dtype)
        self.acts, self.cs, self.tcs = [None] * t_len, [None] * t_len, [None] * t_len
        h, c = h0, np.ascontiguousarray(c0)
        for t in _steps(t_len, reverse):
            gates = h @ w_hh.T
            gates += xg[t]
            gates += b_hh
            # sigmoid(v) = (1 + tanh(v / 2)) / 2: one SIMD tanh pass over all four gates.
            gates[:, : 2 * hd] *= 0.5
            gates[:, 3 * hd :] *= 0.5
            np.tanh(gates, out=gates)
            self.cs[t] = c
            act, c = K.lstm_cell_fwd(gates, c)
            tc = np.tanh(c)
            np.multiply(act[:, 3 * hd :], tc, out=out[t])
            h = out[t]
            self.acts[t], self.tcs[t] = act, tc
        self.out = out
        return out, h.copy(), c

    def backward(self, dout, dhn, dcn):
        t_len, n, hd = self.out.shape
        dg = np.empty((t_len, n, 4 * hd), self.out.dtype)
        dh, dc = dhn, np.ascontiguousarray(dcn)
        for t in _steps(t_len, not self.reverse):
            dgt, dc = K.lstm_cell_bwd(dout[t] + dh, dc, self.acts[t], self.cs[t], self.tcs[t])
            dg[t] = dgt
            dh = dgt @ self.w_hh
        nd = self.needs
        return (
            dg,
            dh if nd[1] else None,
            dc if nd[2] else None,
            _dw_hh(dg, self.out, self.h0, self.reverse) if nd[3] else None,
            dg.sum(axis=(0, 1)) if nd[4] else None,
        )


class _GRURecurrence(Op):
    """(out, h_n) = gru over xg (T, N, 3H) = x W_ih^T + b_ih, from h0, with W_hh, b_hh;
    backward: per step the fused cell VJP and dh += dgh W_hh, then dW_hh in one GEMM"""

    n_outputs = 2

    def forward(self, xg, h0, w_hh, b_hh, reverse=False):
        t_len, n, g3 = xg.shape
        hd = g3 // 3
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


class _RNNRecurrence(Op):
    """(out, h_n) = act(xg_t + h W_hh^T + b_hh) step by step, act tanh or relu;
    backward: dpre = (dout_t + dh) act'(h_t), dh = dpre W_hh, then dW_hh in one GEMM"""

    n_outputs = 2

    def forward(self, xg, h0, w_hh, b_hh, reverse=False, nonlinearity="tanh"):
        t_len, n, hd = xg.shape
        self.h0, self.w_hh, self.reverse, self.relu = h0, w_hh, reverse, nonlinearity == "relu"
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


# -- modules --------------------------------------------------------------------------------


class _RNNBase(Module):
    """Shared bookkeeping of RNN, LSTM and GRU (PyTorch's ``RNNBase``)."""

    gates = 1
    kind = "rnn"

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, dtype=None, nonlinearity="tanh",
    ):  # fmt: skip
        super().__init__()
        where = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise BpcliError(f"hidden_size must be a positive int, got {hidden_size!r}", where)
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise BpcliError(f"num_layers must be a positive int, got {num_layers!r}", where)
        if not 0.0 <= float(dropout) <= 1.0:
            raise BpcliError(f"dropout must be in [0, 1], got {dropout}", where)
        if nonlinearity not in ("tanh", "relu"):
            raise BpcliError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}", where)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.nonlinearity = bool(bidirectional), nonlinearity
        self.dtype = np.dtype(dtype or np.float32)
        self.built = False
        if input_size is not None:
            self.build(input_size)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def build(self, input_size: int) -> None:
        self.input_size = input_size
        hd, g = self.hidden_size, self.gates * self.hidden_size
        bound = 1.0 / math.sqrt(hd)
        for k in range(self.num_layers):
            layer_in = input_size if k == 0 else hd * self.num_directions
            for sfx in ("", "_reverse")[: self.num_directions]:
                shapes = {f"weight_ih_l{k}{sfx}": (g, layer_in), f"weight_hh_l{k}{sfx}": (g, hd)}
                if self.bias:
                    shapes.update({f"bias_ih_l{k}{sfx}": (g,), f"bias_hh_l{k}{sfx}": (g,)})
                for name, shape in shapes.items():
                    p = Parameter(np.empty(shape, self.dtype))
                    init.uniform_(p, -bound, bound)  # torch: every weight and bias U(-1/√H, 1/√H)
                    self.register_parameter(name, p)
        self.built = True

    def get_config(self) -> dict:
        cfg = {"input_size": self.input_size, "hidden_size": self.hidden_size,
               "num_layers": self.num_layers, "bias": self.bias, "batch_first": self.batch_first,
               "dropout": self.dropout, "bidirectional": self.bidirectional,
               "dtype": self.dtype.name}  # fmt: skip
        if self.kind == "rnn":
            cfg["nonlinearity"] = self.nonlinearity
        return cfg

    def _state(self, s, name: str, n: int, unbatched: bool, like):
        where = type(self).__name__
        want = (self.num_layers * self.num_directions, n, self.hidden_size)
        if s is None:
            return const(np.zeros(want, like.dtype))
        s = lift(s, like)
        if unbatched:
            if s.shape != (want[0], want[2]):
                raise BpcliError(f"{name} has shape {s.shape}, expected {(want[0], want[2])} "
                                 "for an unbatched input", where)  # fmt: skip
            s = F.unsqueeze(s, 1)
        if s.shape != want:
            raise BpcliError(f"{name} has shape {s.shape}, expected {want}", where)
        if s.dtype != like.dtype:
            raise BpcliError(f"{name} is {s.dtype} but the input is {like.dtype}", where)
        return s

    def forward(self, input, hx=None):  # noqa: A002 - torch's argument name
        where = type(self).__name__
        x = lift(input)
        if x.ndim not in (2, 3):
            raise BpcliError(
                f"input must be 3-d (batched) or 2-d (unbatched), got {x.shape}", where
            )
        if not self.built:
            self.build(x.shape[-1])
        if x.shape[-1] != self.input_size:
            raise BpcliError(f"expects input_size {self.input_size} in the last dim, got input "
                             f"shape {x.shape}", where)  # fmt: skip
        if x.dtype != self.dtype:
            raise BpcliError(f"input is {x.dtype} but the parameters are {self.dtype}", where)
        unbatched = x.ndim == 2
        if unbatched:
            x = F.unsqueeze(x, 1)
        elif self.batch_first:
            x = F.swapaxes(x, 0, 1)
        if x.shape[0] == 0:
            raise BpcliError(f"the sequence is empty (input shape {x.shape})", where)
        n = x.shape[1]
        if self.kind == "lstm":
            if hx is None:
                hx = (None, None)
            elif not isinstance(hx, tuple | list) or len(hx) != 2:
                raise BpcliError("LSTM's hx must be a tuple (h_0, c_0)", where)
            states = [
                self._state(s, nm, n, unbatched, x)
                for s, nm in zip(hx, ("h_0", "c_0"), strict=True)
            ]
        else:
            states = [self._state(hx, "h_0", n, unbatched, x)]
        out, finals = self._run(x, states)
        if unbatched:
            out = F.squeeze(out, 1)
            finals = [F.squeeze(s, 1) for s in finals]
        elif self.batch_first:
            out = F.swapaxes(out, 0, 1)
        if self.kind == "lstm":
            return out, (finals[0], finals[1])
        return out, finals[0]

    def _run(self, x, states):
        nd = self.num_directions
        finals = [[] for _ in states]
        layer_in = x
        for k in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(("", "_reverse")[:nd]):
                s0 = [s[k * nd + d] for s in states]
                res = self._direction(layer_in, s0, f"l{k}{sfx}", reverse=d == 1)
                outs.append(res[0])
                for lst, s in zip(finals, res[1:], strict=True):
                    lst.append(s)
            layer_in = outs[0] if nd == 1 else F.concat(outs, axis=-1)
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        return layer_in, [F.stack(lst, axis=0) for lst in finals]

    def _direction(self, x, s0, key: str, reverse: bool):
        w_ih, w_hh = getattr(self, "weight_ih_" + key), getattr(self, "weight_hh_" + key)
        if self.bias:
            b_ih, b_hh = getattr(self, "bias_ih_" + key), getattr(self, "bias_hh_" + key)
        else:
            b_ih, b_hh = None, const(np.zeros(w_hh.shape[0], self.dtype))
        xg = F.linear(x, w_ih, b_ih)  # all T steps in one GEMM
        if self.kind == "lstm":
            return _LSTMRecurrence.apply(xg, s0[0], s0[1], w_hh, b_hh, reverse=reverse)
        if self.kind == "gru":
            return _GRURecurrence.apply(xg, s0[0], w_hh, b_hh, reverse=reverse)
        return _RNNRecurrence.apply(
            xg, s0[0], w_hh, b_hh, reverse=reverse, nonlinearity=self.nonlinearity
        )


class RNN(_RNNBase):
    """Elman RNN, h_t = tanh or relu(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (torch.nn.RNN).

    ``forward(input, h_0=None)`` returns ``(output, h_n)``. ``input_size=None`` is inferred.
    """

    def __init__(
        self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
        batch_first=False, dropout=0.0, bidirectional=False, dtype=None,
    ):  # fmt: skip
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, nonlinearity)  # fmt: skip


class LSTM(_RNNBase):
    """LSTM with gates i, f, g, o (torch.nn.LSTM); ``forward(input, (h_0, c_0))`` returns
    ``(output, (h_n, c_n))``. States default to zeros; ``input_size=None`` is inferred."""

    gates, kind = 4, "lstm"

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, dtype=None,
    ):  # fmt: skip
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)  # fmt: skip


class GRU(_RNNBase):
    """GRU with gates r, z, n (torch.nn.GRU); ``forward(input, h_0=None)`` returns
    ``(output, h_n)``. ``input_size=None`` is inferred."""

    gates, kind = 3, "gru"

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, dtype=None,
    ):  # fmt: skip
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)  # fmt: skip


LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
