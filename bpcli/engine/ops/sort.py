"""Sorting along one axis: the k largest (or smallest) values and their indices.

Ties keep the lower index first (a stable sort), as ONNX's TopK asks; ``sorted=False`` returns
the k entries in index order.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.return_types import return_type
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["topk"]


class TopK(Op):
    """(y, i) = the k largest (smallest) x along axis and their int64 indices;
    dx = g scattered back to the indices (zero elsewhere)"""

    name, onnx, n_outputs, saves_inputs = "topk", "TopK", 2, False

    def forward(self, x, k, axis, largest, sorted):  # torch.topk's and ONNX's names
        n = x.shape[axis]
        if largest:  # descending order sorts the reversed axis (negation would wrap uints)
            idx = n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
        else:
            idx = np.argsort(x, axis=axis, kind="stable")
        idx = np.take(idx, np.arange(k), axis=axis)
        if not sorted:
            idx = np.sort(idx, axis=axis)
        self.idx, self.shape = idx.astype(np.int64), x.shape
        return np.take_along_axis(x, self.idx, axis), self.idx

    def backward(self, g, _gidx):
        dx = np.zeros(self.shape, g.dtype)
        np.put_along_axis(dx, self.idx, g, self.attrs["axis"])  # the k indices are distinct
        return dx


def topk(x, k: int, axis: int = -1, largest: bool = True, sorted: bool = True, *,
         dim: int | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The ``k`` largest values along ``axis`` (smallest with ``largest=False``) and their
    int64 indices, as ``torch.topk`` (``dim=`` works too); ties keep the lower index first."""
    x = lift(x)
    if x.ndim == 0:
        raise BpcliError("needs a tensor with at least one dim", "topk")
    axis = norm_axis(axis if dim is None else dim, x.ndim, "topk")
    if not 0 <= int(k) <= x.shape[axis]:
        raise BpcliError(f"k={k} is outside 0..{x.shape[axis]} (the size of axis {axis})", "topk")
    out = TopK.apply(x, k=int(k), axis=axis, largest=bool(largest), sorted=bool(sorted))
    return return_type("topk")(*out)
