"""Scans along one axis: cumulative sum and product, inclusive or exclusive, either direction.

``exclusive`` shifts the result one step (the first element becomes 0 for a sum, 1 for a
product) and ``reverse`` runs from the end of the axis, as in ONNX's CumSum/CumProd.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.elementwise import astype
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["cumprod", "cumsum"]


def _flip(a: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    return np.flip(a, axis) if reverse else a


def _shift(a: np.ndarray, axis: int, fill, forward: bool = True) -> np.ndarray:
    """``a`` moved one step along ``axis`` (towards the end if ``forward``), ``fill`` let in."""
    out = np.full_like(a, fill)
    n = a.shape[axis]
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis], dst[axis] = (
        (slice(0, n - 1), slice(1, n)) if forward else (slice(1, n), slice(0, n - 1))
    )
    out[tuple(dst)] = a[tuple(src)]
    return out


def cumsum_array(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    y = np.cumsum(_flip(x, axis, reverse), axis=axis, dtype=x.dtype)
    if exclusive:
        y = _shift(y, axis, 0)
    return _flip(y, axis, reverse)


def cumprod_array(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    y = np.cumprod(_flip(x, axis, reverse), axis=axis, dtype=x.dtype)
    if exclusive:
        y = _shift(y, axis, 1)
    return _flip(y, axis, reverse)


class CumSum(Op):
    """y = cumsum(x, axis) (exclusive, reverse); dx = cumsum(g, axis) (exclusive, not reverse)"""

    name, onnx, saves_inputs = "cumsum", "CumSum", False

    def forward(self, x, axis, exclusive, reverse):
        return cumsum_array(x, axis, exclusive, reverse)

    def backward(self, g):
        a = self.attrs
        # y = L x with L (strictly, if exclusive) triangular; dx = L^T g scans the other way
        return cumsum_array(g, a["axis"], a["exclusive"], not a["reverse"])


class CumProd(Op):
    """y_i = prod_{j<=i} x_j along axis (exclusive, reverse); dx_i = e_i s_i, e the exclusive
    product, s_i = g_i + x_{i+1} s_{i+1} (exact where x has zeros)"""

    name, onnx = "cumprod", "CumProd"

    def forward(self, x, axis, exclusive, reverse):
        self.x = x
        return cumprod_array(x, axis, exclusive, reverse)

    def backward(self, g):
        a = self.attrs
        axis, rev = a["axis"], a["reverse"]
        # work on the inclusive forward scan along axis 0
        x = np.moveaxis(_flip(self.x, axis, rev), axis, 0)
        g = np.moveaxis(_flip(g, axis, rev), axis, 0)
        if a["exclusive"]:  # y_excl[i + 1] = y_incl[i]: its gradient moves one step back
            g = _shift(g, 0, 0, forward=False)
        before = cumprod_array(x, 0, True, False)
        s = np.empty_like(g)
        if len(g):
            s[-1] = g[-1]
        for i in range(len(g) - 2, -1, -1):
            s[i] = g[i] + x[i + 1] * s[i + 1]
        return _flip(np.moveaxis(before * s, 0, axis), axis, rev)


def _dim(dim, axis, where: str) -> int:
    """torch's ``dim=`` with numpy's ``axis=`` as its alias; one of them is required."""
    if dim is None:
        dim = axis
    if dim is None:
        raise BpcliError("needs dim=", where)
    return dim


def _scan(op, x, axis, exclusive, reverse, dtype=None) -> Tensor:
    x = lift(x)
    if dtype is not None or x.dtype.kind in "biu":  # torch scans bool/ints in int64
        x = astype(x, np.int64 if dtype is None else dtype)
    if x.ndim == 0:  # torch: a 0-d tensor scans as one element (dim 0 or -1)
        norm_axis(axis, 1, op.name)
        return reshape(_scan(op, reshape(x, 1), 0, exclusive, reverse), ())
    return op.apply(x, axis=norm_axis(axis, x.ndim, op.name), exclusive=bool(exclusive),
                    reverse=bool(reverse))  # fmt: skip


def cumsum(x, dim: int | None = None, exclusive: bool = False, reverse: bool = False, *,
           dtype=None, axis: int | None = None) -> Tensor:  # fmt: skip
    """Running sum along ``axis`` (torch.cumsum, ``dtype=`` too); ``exclusive``/``reverse`` as
    ONNX's CumSum."""
    return _scan(CumSum, x, _dim(dim, axis, "cumsum"), exclusive, reverse, dtype)


def cumprod(x, dim: int | None = None, exclusive: bool = False, reverse: bool = False, *,
           dtype=None, axis: int | None = None) -> Tensor:  # fmt: skip
    """Running product along ``axis`` (torch.cumprod, ``dtype=`` too); ``exclusive``/``reverse``
    as ONNX's."""
    return _scan(CumProd, x, _dim(dim, axis, "cumprod"), exclusive, reverse, dtype)
