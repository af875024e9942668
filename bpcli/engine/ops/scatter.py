"""Scatter: ``index_add`` adds whole slices of a source into ``x`` at integer positions.

It is the dual of ``index_select`` (each one's backward is the other's forward), and enough
to compose the other scatters: ``x.reshape(-1)`` with flat positions reaches every element,
so ONNX's ScatterElements and ScatterND import through it. Repeated positions accumulate.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op, same_float
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["index_add"]


class IndexAdd(Op):
    """y = x; y[index[i]] += source[i] along axis (torch.index_add); dx = g, dsource =
    take(g, index, axis)"""

    # exports as ScatterND(reduction="add") after moving the axis to the front (an emitter)
    name, onnx, saves_inputs = "index_add", "ScatterND", False

    def forward(self, x, index, source, axis):
        self.index = index
        x, source = same_float("index_add", x, source)
        y = x.copy()
        # NOTE: np.add.at accumulates repeated positions; y[index] += s would keep the last one
        np.add.at(np.moveaxis(y, axis, 0), index, np.moveaxis(source, axis, 0))
        return y

    def backward(self, g):
        return g, None, np.take(g, self.index, axis=self.attrs["axis"])


def index_add(x, dim: int, index, source) -> Tensor:
    """torch.index_add: ``x`` with ``source[.., i, ..]`` added at ``x[.., index[i], ..]``.

    ``index`` is 1-D; ``source`` has ``x``'s shape except ``len(index)`` along ``dim``.
    """
    x, source = lift(x), lift(source)
    if x.ndim == 0 or source.ndim != x.ndim:
        raise BpcliError(f"source {source.shape} and x {x.shape} need one rank >= 1", "index_add")
    axis = norm_axis(dim, x.ndim, "index_add")
    arr = index.data if isinstance(index, Tensor) else np.asarray(index)
    if arr.size == 0:
        arr = arr.astype(np.intp)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise BpcliError(f"index must be a 1-D integer tensor, got {arr.shape} {arr.dtype}",
                         "index_add")  # fmt: skip
    want = (*x.shape[:axis], len(arr), *x.shape[axis + 1 :])
    if source.shape != want:
        raise BpcliError(f"source has shape {source.shape}, expected {want}", "index_add")
    n = x.shape[axis]
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise BpcliError(f"index values in [{arr.min()}, {arr.max()}] are out of range for "
                         f"size {n}", "index_add")  # fmt: skip
    arr = np.where(arr < 0, arr + n, arr) if arr.size and arr.min() < 0 else arr
    return IndexAdd.apply(x, const(arr), source, axis=axis)
