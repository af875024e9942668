"""Reductions over any set of axes, with ``keepdims``.

Axes follow numpy (``axis=``, ``keepdims=``); PyTorch's ``dim=``/``keepdim=`` are accepted too.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "sum", "mean", "var", "max", "min", "amax", "amin", "logsumexp", "norm", "argmax", "argmin",
]  # fmt: skip


def normalize_axes(axis, ndim: int, opname: str) -> tuple[int, ...]:
    """``axis`` (None, int or sequence, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        # NOTE: `ndim or 1`, not max(ndim, 1): this module defines its own max().
        if not -(ndim or 1) <= a < (ndim or 1):
            raise BpcliError(f"axis {a} is out of range for a tensor with {ndim} dims", opname)
        out.append(int(a) % (ndim or 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise BpcliError(f"repeated axis in {axis}", opname)
    return tuple(sorted(out)) if ndim else ()


def axis_args(axis, keepdims, dim, keepdim):
    """Merge numpy-style and PyTorch-style keyword names."""
    if dim is not None:
        if axis is not None:
            raise BpcliError("give axis= or dim=, not both", "reduce")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, bool(keepdims)


def expand_back(g: np.ndarray, in_shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdims and axes:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(shape)
    return g


class Sum(Op):
    """y = sum(x, axes); dx = broadcast(g)"""

    name, onnx, saves_inputs = "sum", "ReduceSum", False

    def forward(self, x, axes, keepdims):
        self.shape = x.shape
        return np.sum(x, axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.shape, a["axes"], a["keepdims"])
        return np.broadcast_to(g, self.shape)


class Mean(Op):
    """y = mean(x, axes); dx = broadcast(g) / n"""

    name, onnx, saves_inputs = "mean", "ReduceMean", False

    def forward(self, x, axes, keepdims):
        self.shape = x.shape
        self.n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return np.mean(x, axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.shape, a["axes"], a["keepdims"]) / g.dtype.type(max(self.n, 1))
        return np.broadcast_to(g, self.shape)


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    return Sum.apply(x, axes=normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    return Mean.apply(x, axes=normalize_axes(axis, x.ndim, "mean"), keepdims=keepdims)
