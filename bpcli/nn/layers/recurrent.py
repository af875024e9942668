"""RNN, LSTM, GRU: PyTorch's classes, arguments, parameter names, gate order and init.

Per layer and direction the input-to-hidden product for all time steps is one GEMM (a
``linear`` op over T*N rows); the recurrence over the precomputed input gates is then one graph
node (``F.lstm_seq`` / ``gru_seq`` / ``rnn_seq``) that loops over the steps with one small GEMM
(h W_hh^T) plus the fused Numba cell kernel each, forward and backward. An LSTM's ``proj_size``
(torch's LSTMP) is the same node with a projection weight: h_t = (o_t tanh(c_t)) W_hr^T.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.engine.convert import const, lift
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter

__all__ = ["GRU", "LAYERS", "LSTM", "RNN"]


# -- modules --------------------------------------------------------------------------------


class _RNNBase(Module):
    """Shared bookkeeping of RNN, LSTM and GRU (PyTorch's ``RNNBase``)."""

    gates = 1
    kind = "rnn"

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, dtype=None, nonlinearity="tanh", proj_size=0,
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
        # torch's two checks and messages
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or proj_size < 0:
            raise BpcliError("proj_size should be a positive integer or zero to disable "
                             f"projections, got {proj_size!r}", where)  # fmt: skip
        if proj_size >= hidden_size:
            raise BpcliError(f"proj_size has to be smaller than hidden_size, got proj_size "
                             f"{proj_size} and hidden_size {hidden_size}", where)  # fmt: skip
        self.proj_size = proj_size
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

    @property
    def output_size(self) -> int:
        """The size of h (and of each direction's output): proj_size if set, else hidden."""
        return self.proj_size or self.hidden_size

    def build(self, input_size: int) -> None:
        self.input_size = input_size
        hd, g, out = self.hidden_size, self.gates * self.hidden_size, self.output_size
        bound = 1.0 / math.sqrt(hd)
        for k in range(self.num_layers):
            layer_in = input_size if k == 0 else out * self.num_directions
            for sfx in ("", "_reverse")[: self.num_directions]:
                shapes = {f"weight_ih_l{k}{sfx}": (g, layer_in), f"weight_hh_l{k}{sfx}": (g, out)}
                if self.bias:
                    shapes.update({f"bias_ih_l{k}{sfx}": (g,), f"bias_hh_l{k}{sfx}": (g,)})
                if self.proj_size:  # torch's order: after the biases
                    shapes[f"weight_hr_l{k}{sfx}"] = (self.proj_size, hd)
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
        if self.kind == "lstm":
            cfg["proj_size"] = self.proj_size
        return cfg

    def _state(self, s, name: str, n: int, unbatched: bool, like):
        where = type(self).__name__
        size = self.hidden_size if name == "c_0" else self.output_size
        want = (self.num_layers * self.num_directions, n, size)
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

    def forward(self, input, hx=None):
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
        b_ih = getattr(self, "bias_ih_" + key) if self.bias else None
        b_hh = getattr(self, "bias_hh_" + key) if self.bias else None
        xg = F.linear(x, w_ih, b_ih)  # all T steps in one GEMM
        if self.kind == "lstm":
            w_hr = getattr(self, "weight_hr_" + key) if self.proj_size else None
            return F.lstm_seq(xg, s0[0], s0[1], w_hh, b_hh, reverse=reverse, w_hr=w_hr)
        if self.kind == "gru":
            return F.gru_seq(xg, s0[0], w_hh, b_hh, reverse=reverse)
        return F.rnn_seq(xg, s0[0], w_hh, b_hh, reverse=reverse, nonlinearity=self.nonlinearity)


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
    ``(output, (h_n, c_n))``. States default to zeros; ``input_size=None`` is inferred.

    ``proj_size > 0`` (< hidden_size) projects each step's hidden state by ``weight_hr_l{k}``
    (proj_size, hidden_size), as torch does: h, h_0/h_n and the output have proj_size features
    (per direction), c keeps hidden_size. Such an LSTM does not export to ONNX."""

    gates, kind = 4, "lstm"

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, proj_size=0, dtype=None,
    ):  # fmt: skip
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, proj_size=proj_size)  # fmt: skip


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
