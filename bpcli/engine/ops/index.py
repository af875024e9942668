"""Indexing: ``x[index]`` (PyTorch's basic and advanced indexing), gather and index_select.

Index arrays are inputs of the op (constant tensors), not attributes, so the exporter can
write them as initializers. Repeated integer indices accumulate in the backward.
"""

from __future__ import annotations

import operator

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["gather", "getitem", "index_select"]


class IndexOutOfRangeError(BpcliError, IndexError):
    """An index past the end: an IndexError too, so ``for row in x`` stops at the end."""


def _build(spec, arrays) -> tuple[tuple, tuple | None]:
    """The numpy index (or two, applied one after the other) that does what PyTorch does
    for ``spec`` (plain values) and the index ``arrays``.

    PyTorch selects integer indices first, as basic indexing, and only then applies the
    index arrays; numpy counts an int beside an index array as advanced, so ``x[0, :, idx]``
    puts the indexed dim first. With both present the index is split: step one takes the
    ints (arrays kept as full slices), step two the arrays on what is left.
    """
    items, it = [], iter(arrays)
    for item in spec:
        kind = item[0]
        if kind == "int":
            items.append(item[1])
        elif kind == "slice":
            items.append(slice(*item[1:]))
        elif kind == "new":
            items.append(None)
        elif kind == "ellipsis":
            items.append(Ellipsis)
        else:
            items.append(next(it))
    has_int = any(isinstance(i, int) for i in items)
    if not (has_int and arrays):
        return tuple(items), None
    first, second = [], []
    for i in items:
        if isinstance(i, np.ndarray):
            first.extend([slice(None)] * (i.ndim if i.dtype.kind == "b" else 1))
            second.append(i)
        elif isinstance(i, int):
            first.append(i)
        else:  # slice, None and ... keep their dims for step two as full slices
            first.append(i)
            second.append(Ellipsis if i is Ellipsis else slice(None))
    return tuple(first), tuple(second)


def _take(x: np.ndarray, steps):
    first, second = steps
    y = x[first]
    return y if second is None else y[second]


class GetItem(Op):
    """y = x[index] (PyTorch's rules); dx = zeros(x.shape) with g added at index (repeats
    accumulate)"""

    # NOTE: no single ONNX op; the exporter decomposes it into Slice/Gather/Squeeze/Unsqueeze.
    name, onnx, saves_inputs = "getitem", None, False

    def forward(self, x, *arrays, index):
        self.in_shape = x.shape
        self.steps = _build(index, arrays)
        # repeated integer indices are possible only with an integer array of 2+ elements
        self.accumulate = any(a.dtype.kind != "b" and a.size > 1 for a in arrays)
        try:
            y = _take(x, self.steps)
        except IndexError as e:
            raise IndexOutOfRangeError(
                f"{e} (indexing a tensor of shape {x.shape})", "getitem"
            ) from None
        return y if isinstance(y, np.ndarray) else np.asarray(y)

    def backward(self, g):
        dx = np.zeros(self.in_shape, g.dtype)
        first, second = self.steps
        view, idx = (dx, first) if second is None else (dx[first], second)  # step one: a view
        if self.accumulate:
            np.add.at(view, idx, g)
        else:
            view[idx] = g
        return (dx,) + (None,) * (len(self.parents) - 1)


def write(data: np.ndarray, steps, value) -> None:
    """``data[index] = value`` for the ``steps`` ``_build`` made of an index."""
    first, second = steps
    try:
        if second is None:
            data[first] = value
        else:
            data[first][second] = value  # step one is basic indexing: a view of data
    except IndexError as e:
        raise IndexOutOfRangeError(
            f"{e} (indexing a tensor of shape {data.shape})", "setitem"
        ) from None


def setitem(data: np.ndarray, index, value) -> None:
    """``data[index] = value`` with PyTorch's indexing rules (``Tensor.__setitem__``)."""
    spec, arrays = _parse(index)
    write(data, _build(spec, [a.data for a in arrays]), value)


class Gather(Op):
    """y[..i..] = x[..index[..i..]..] along axis (torch.gather); dx = scatter-add of g"""

    name, onnx, saves_inputs = "gather", "GatherElements", False

    def forward(self, x, index, axis):
        self.in_shape = x.shape
        self.index = index
        part = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))
        return np.take_along_axis(x[part], index, axis=axis)

    def backward(self, g):
        dx = np.zeros(self.in_shape, g.dtype)
        index, axis = self.index, self.attrs["axis"]
        strides = [int(np.prod(self.in_shape[d + 1 :])) for d in range(len(self.in_shape))]
        lin = index * strides[axis]
        for d, n in enumerate(index.shape):
            if d != axis and n > 1:
                shape = [1] * index.ndim
                shape[d] = n
                lin = lin + (np.arange(n) * strides[d]).reshape(shape)
        # NOTE: 1-D np.add.at has a fast path in numpy >= 2; the flat index makes it 1-D.
        np.add.at(dx.reshape(-1), lin.reshape(-1), g.reshape(-1))
        return dx, None


class IndexSelect(Op):
    """y = take(x, index, axis); dx = zeros(x.shape) with g added at index along axis"""

    name, onnx, saves_inputs = "index_select", "Gather", False

    def forward(self, x, index, axis):
        self.in_shape = x.shape
        self.index = index
        return np.take(x, index, axis=axis)

    def backward(self, g):
        axis, k = self.attrs["axis"], self.index.ndim
        dx = np.zeros(self.in_shape, g.dtype)
        perm = list(range(axis, axis + k)) + list(range(axis)) + list(range(axis + k, g.ndim))
        np.add.at(np.moveaxis(dx, axis, 0), self.index, g.transpose(perm))
        return dx, None


# -- functional API -------------------------------------------------------------------------


def _as_int(v, what: str):
    if v is None:
        return None
    try:
        return operator.index(v.item() if isinstance(v, Tensor | np.ndarray) else v)
    except TypeError:
        raise BpcliError(f"{what} must be an int or None, got {v!r}", "getitem") from None


def _parse(index) -> tuple[tuple, list[Tensor]]:
    """Split an index into plain-value ``spec`` items and the index-array tensors."""
    if not isinstance(index, tuple):
        index = (index,)
    spec: list[tuple] = []
    arrays: list[Tensor] = []
    for it in index:
        if it is None:
            spec.append(("new",))
        elif it is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(it, slice):
            spec.append(
                ("slice", *(_as_int(v, "a slice bound") for v in (it.start, it.stop, it.step)))
            )
        elif isinstance(it, int | np.integer) and not isinstance(it, bool | np.bool_):
            spec.append(("int", int(it)))
        else:
            arr = it.data if isinstance(it, Tensor) else np.asarray(it)
            if arr.dtype.kind in "iu" and arr.ndim == 0:
                spec.append(("int", int(arr)))
                continue
            if arr.size == 0 and arr.dtype.kind not in "biu":
                arr = arr.astype(np.intp)
            if arr.dtype.kind not in "biu":
                raise BpcliError(f"index of dtype {arr.dtype} (use int or bool indices)", "getitem")
            spec.append(("array",))
            # the caller's own index tensor stays an input (a mask made from the data stays
            # in a traced graph); anything else becomes a constant
            arrays.append(it if isinstance(it, Tensor) and it.data is arr else const(arr))
    return tuple(spec), arrays


def getitem(x, index) -> Tensor:
    """``x[index]`` with PyTorch's rules: ints, slices, None, ..., int arrays and bool masks;
    ints are taken first, so an index array beside them keeps its place (``x[0, :, idx]``)."""
    x = lift(x)
    spec, arrays = _parse(index)
    return GetItem.apply(x, *arrays, index=spec)


def _int_index(index, n: int, opname: str) -> np.ndarray:
    arr = index.data if isinstance(index, Tensor) else np.asarray(index)
    if arr.size == 0:
        arr = arr.astype(np.intp)
    if arr.dtype.kind not in "iu":
        raise BpcliError(f"index must be an integer tensor, got {arr.dtype}", opname)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        lo, hi = int(arr.min()), int(arr.max())
        raise BpcliError(f"index values in [{lo}, {hi}] are out of range for size {n}", opname)
    return np.where(arr < 0, arr + n, arr) if arr.size and arr.min() < 0 else arr


def _index_input(index, idx: np.ndarray) -> Tensor:
    """The index as an op input: the caller's Tensor itself when its values are used as they
    are (so a traced graph keeps where they came from, an argmax say), else a constant."""
    if isinstance(index, Tensor) and index.data is idx:
        return index
    return const(idx)


def gather(x, dim: int, index) -> Tensor:
    """torch.gather: ``out[i][j] = x[i][index[i][j]]`` for dim=1; index has x's rank."""
    x = lift(x)
    shape = np.shape(index.data if isinstance(index, Tensor) else index)
    if len(shape) != x.ndim:
        raise BpcliError(f"index of shape {shape} needs the rank of x {x.shape}", "gather")
    if x.ndim == 0:
        raise BpcliError("gather needs a tensor with at least one dim", "gather")
    axis = norm_axis(dim, x.ndim, "gather")
    if any(n > m for d, (n, m) in enumerate(zip(shape, x.shape, strict=False)) if d != axis):
        raise BpcliError(
            f"index of shape {shape} is larger than x {x.shape} off axis {axis}", "gather"
        )
    idx = _int_index(index, x.shape[axis], "gather")
    return Gather.apply(x, _index_input(index, idx), axis=axis)


def index_select(x, dim: int, index) -> Tensor:
    """torch.index_select (numpy's take along an axis): whole slices picked by ``index``."""
    x = lift(x)
    axis = norm_axis(dim, x.ndim, "index_select")
    idx = _int_index(index, x.shape[axis], "index_select")
    return IndexSelect.apply(x, _index_input(index, idx), axis=axis)
