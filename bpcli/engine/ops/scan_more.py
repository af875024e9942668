"""More scans along one dim, as torch has them: cummax and cummin (values and int64
indices) and logcumsumexp.

Tie rules are torch's: a later element equal to the running extreme takes over its index, and
nan, once met, stays the value (each later nan takes the index).
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.return_types import values_indices
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["cummax", "cummin", "logcumsumexp"]


def scatter_add_along(g: np.ndarray, idx: np.ndarray, axis: int, shape) -> np.ndarray:
    """zeros(shape) with ``g[.., i, ..]`` added at ``[.., idx[.., i, ..], ..]`` along ``axis``
    (``idx`` has g's shape; repeated indices accumulate). One bincount, not a Python loop."""
    g0, i0 = np.moveaxis(g, axis, 0), np.moveaxis(idx, axis, 0)
    n, rest = shape[axis], int(np.prod(g0.shape[1:], dtype=np.int64))
    lin = i0.reshape(len(i0), rest) * rest + np.arange(rest)
    flat = np.bincount(lin.ravel(), weights=g0.reshape(-1), minlength=n * rest)
    return np.moveaxis(flat.astype(g.dtype).reshape(n, *g0.shape[1:]), 0, axis)


class _CumExtreme(Op):
    n_outputs, saves_inputs = 2, False
    better = None  # (new, running) -> where new takes over

    def forward(self, x, axis):
        x0 = np.moveaxis(x, axis, 0)
        vals, idx = np.empty_like(x0), np.zeros(x0.shape, np.int64)
        if len(x0):
            vals[0], run, at = x0[0], x0[0].copy(), np.zeros(x0.shape[1:], np.int64)
            for i in range(1, len(x0)):
                take = type(self).better(x0[i], run)
                if x0.dtype.kind == "f":
                    take |= np.isnan(x0[i])
                run, at = np.where(take, x0[i], run), np.where(take, i, at)
                vals[i], idx[i] = run, at
        self.idx, self.shape = np.moveaxis(idx, 0, axis), x.shape
        return np.moveaxis(vals, 0, axis), self.idx

    def backward(self, g, _gidx):
        return scatter_add_along(g, self.idx, self.attrs["axis"], self.shape)


class CumMax(_CumExtreme):
    """(y, i) = running max of x along axis and its int64 index (a tie takes the later index);
    dx = g added at i"""

    name, onnx, better = "cummax", None, np.greater_equal


class CumMin(_CumExtreme):
    """(y, i) = running min of x along axis and its int64 index (a tie takes the later index);
    dx = g added at i"""

    name, onnx, better = "cummin", None, np.less_equal


def _rev_logcumsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(np.logaddexp.accumulate(np.flip(a, axis), axis=axis), axis)


class LogCumSumExp(Op):
    """y_i = log(sum_{j<=i} exp(x_j)) along axis; dx_j = sum_{i>=j} g_i exp(x_j - y_i), summed
    in log space for g > 0 and g < 0 apart (torch's stable form)"""

    name, onnx = "logcumsumexp", None

    def forward(self, x, axis):
        self.x = x
        self.y = np.logaddexp.accumulate(x, axis=axis) if x.size else x.copy()
        return self.y

    def backward(self, g):
        if g.size == 0:
            return np.zeros_like(g)
        axis, low = self.attrs["axis"], np.finfo(g.dtype).min
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_abs = np.log(np.abs(g))
            pos = np.where(g > 0, log_abs, low) - self.y
            neg = np.where(g < 0, log_abs, low) - self.y
            return np.exp(_rev_logcumsumexp(pos, axis) + self.x) - np.exp(
                _rev_logcumsumexp(neg, axis) + self.x
            )


def _along(op, x, dim, opname: str):
    x = lift(x)
    if x.ndim == 0:  # torch: a 0-d tensor scans as one element (dim 0 or -1)
        norm_axis(dim, 1, opname)
        out = _along(op, reshape(x, 1), 0, opname)
        if isinstance(out, tuple):
            return tuple(reshape(o, ()) for o in out)
        return reshape(out, ())
    return op.apply(x, axis=norm_axis(dim, x.ndim, opname))


def cummax(x, dim: int):
    """Running maximum along ``dim`` and its int64 indices: ``(values, indices)``, as
    torch.cummax (a tie takes the later index; nan propagates)."""
    v, i = _along(CumMax, x, dim, "cummax")
    return values_indices("cummax", v, i)


def cummin(x, dim: int):
    """Running minimum along ``dim`` and its int64 indices: ``(values, indices)``, as
    torch.cummin (a tie takes the later index; nan propagates)."""
    v, i = _along(CumMin, x, dim, "cummin")
    return values_indices("cummin", v, i)


def logcumsumexp(x, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along ``dim`` without overflow (torch.logcumsumexp)."""
    x = lift(x)
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float tensor, got {x.dtype} (cast with .astype())",
                         "logcumsumexp")  # fmt: skip
    return _along(LogCumSumExp, x, dim, "logcumsumexp")
