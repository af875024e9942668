"""Writes at positions, as torch has them: scatter (a source tensor or a value, ``reduce=``),
scatter_add, scatter_reduce (sum/prod/mean/amax/amin, ``include_self``), index_put
(``accumulate=``), masked_fill and masked_scatter.

All scatters run on flat positions (one ``np.<ufunc>.at`` each), and their gradients follow
torch's formulas, ties and repeated positions included.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op, same_float
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.elementwise import astype, where
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "index_put",
    "masked_fill",
    "masked_scatter",
    "scatter",
    "scatter_add",
    "scatter_reduce",
]  # fmt: skip

REDUCES = ("none", "sum", "prod", "mean", "amax", "amin")
_AT = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum,
       "amin": np.minimum}  # fmt: skip


def flat_positions(index: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """The flat (row-major) position in an array of ``shape`` of every element of ``index``,
    its coordinate along ``axis`` replaced by the index value (torch.scatter's addressing)."""
    strides = [int(np.prod(shape[d + 1 :], dtype=np.int64)) for d in range(len(shape))]
    lin = index.astype(np.int64) * strides[axis]
    for d, n in enumerate(index.shape):
        if d != axis:
            lin = lin + (np.arange(n) * strides[d]).reshape([-1 if e == d else 1 for e in
                                                             range(index.ndim)])  # fmt: skip
    return lin.reshape(-1)


def _identity(reduce: str, dtype: np.dtype):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    big = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
    return -big if reduce == "amax" else big


class ScatterReduce(Op):
    """y = x with src reduced in at index along axis (torch.scatter / scatter_reduce); dx, dsrc
    as torch: sum/none pass g through (none zeroes the overwritten x), mean divides by the
    count, prod multiplies the other factors, amax/amin split g among the tied extremes"""

    name, onnx = "scatter_reduce", "ScatterElements"

    def forward(self, x, index, src, axis, reduce, include_self):
        x, src = same_float(self.name, x, src)
        self.x, self.src_shape, self.index_shape = x, src.shape, index.shape
        self.lin = flat_positions(index, x.shape, axis)
        self.s = src[tuple(slice(0, n) for n in index.shape)].reshape(-1)
        y = x.copy().reshape(-1)
        if reduce == "none":
            y[self.lin] = self.s
            return y.reshape(x.shape)
        if not include_self:
            y[self.lin] = _identity(reduce, x.dtype)
        _AT[reduce].at(y, self.lin, self.s)
        if reduce == "mean":
            self.n = np.full(y.shape, int(include_self), x.dtype)
            np.add.at(self.n, self.lin, 1)
            self.n[self.n == 0] = 1
            y = y / self.n if y.dtype.kind == "f" else y // self.n
        self.y = y
        return y.reshape(x.shape)

    def backward(self, g):
        a, lin = self.attrs, self.lin
        reduce, shape = a["reduce"], self.x.shape
        gf = g.reshape(-1)
        if reduce in ("none", "sum"):
            dx, ds = gf.copy(), gf[lin]
        elif reduce == "mean":
            dx = gf / self.n
            ds = dx[lin]
        elif reduce == "prod":
            dx, ds = self._prod_grads(gf)
        else:  # amax/amin: split among the elements equal to the result (torch's rule)
            xf = self.x.reshape(-1)
            val = self.y[lin]
            self_hit = (xf == self.y).astype(g.dtype)
            src_hit = (self.s == val).astype(g.dtype)
            count = self_hit.copy()
            np.add.at(count, lin, src_hit)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = gf / count
            dx, ds = self_hit * share, src_hit * share[lin]
        if reduce == "none" or not a["include_self"]:
            dx = dx.copy()
            dx[lin] = 0
        dsrc = np.zeros(self.src_shape, g.dtype)
        dsrc[tuple(slice(0, n) for n in self.index_shape)] = ds.reshape(self.index_shape)
        return dx.reshape(shape), None, dsrc

    def _prod_grads(self, gf):
        """d result / d factor = the product of the other factors of its position, exact
        with zeros: no division by a zero factor."""
        lin, xf, s = self.lin, self.x.reshape(-1), self.s
        t = gf.dtype.type
        # per position: the number of zero factors and the product of the others
        zeros, nz = (xf == 0).astype(np.int64), np.where(xf == 0, t(1), xf)
        if not self.attrs["include_self"]:  # x is a factor only where nothing is written
            zeros[lin], nz[lin] = 0, 1
        np.add.at(zeros, lin, s == 0)
        np.multiply.at(nz, lin, np.where(s == 0, t(1), s))

        def others(v, z, p):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(v == 0, np.where(z == 1, p, t(0)),
                                np.where(z == 0, p / np.where(v == 0, t(1), v), t(0)))  # fmt: skip

        return gf * others(xf, zeros, nz), gf[lin] * others(s, zeros[lin], nz[lin])


class IndexPut(Op):
    """y = x with y[indices] = values (+= with accumulate; broadcast); dx = g (zero at the
    written positions unless accumulate), dvalues = g[indices]"""

    name, onnx, saves_inputs = "index_put", "ScatterND", False

    def forward(self, x, values, *indices, accumulate):
        x, values = same_float(self.name, x, values)
        self.key = tuple(indices)
        y = x.copy()
        if accumulate:
            np.add.at(y, self.key, np.broadcast_to(values, y[self.key].shape))
        else:
            y[self.key] = values
        return y

    def backward(self, g):
        dx = g
        if not self.attrs["accumulate"]:
            dx = g.copy()
            dx[self.key] = 0
        return (dx, g[self.key]) + (None,) * len(self.key)


class MaskedScatter(Op):
    """y = x with the positions where mask holds filled, in row-major order, by the first
    elements of source; dx = g where mask is false, dsource = g[mask] then zeros"""

    name, onnx, saves_inputs = "masked_scatter", None, False

    def forward(self, x, mask, source):
        x, source = same_float(self.name, x, source)
        self.mask, self.src_shape = np.broadcast_to(mask, x.shape), source.shape
        k = int(self.mask.sum())
        if source.size < k:
            raise BpcliError(f"source has {source.size} elements, the mask selects {k}",
                             "masked_scatter")  # fmt: skip
        y = x.copy()
        y[self.mask] = source.reshape(-1)[:k]
        return y

    def backward(self, g):
        ds = np.zeros(int(np.prod(self.src_shape, dtype=np.int64)), g.dtype)
        picked = g[self.mask]
        ds[: picked.size] = picked
        return g * ~self.mask, None, ds.reshape(self.src_shape)


# -- functional API ----------------------------------------------------------------------------


def _index(index, x: Tensor, src_shape, axis: int, opname: str) -> np.ndarray:
    arr = index.data if isinstance(index, Tensor) else np.asarray(index)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise BpcliError(f"index must be an integer tensor, got {arr.dtype}", opname)
    if arr.ndim != x.ndim:
        raise BpcliError(f"index of shape {arr.shape} needs the rank of x {x.shape}", opname)
    if any(n > m for n, m in zip(arr.shape, src_shape, strict=True)) or any(
        n > m for d, (n, m) in enumerate(zip(arr.shape, x.shape, strict=True)) if d != axis
    ):
        raise BpcliError(f"index of shape {arr.shape} is larger than src {src_shape} or than x "
                         f"{x.shape} off dim {axis}", opname)  # fmt: skip
    n = x.shape[axis]
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise BpcliError(f"index values in [{arr.min()}, {arr.max()}] are out of range for "
                         f"size {n}", opname)  # fmt: skip
    return np.where(arr < 0, arr + n, arr).astype(np.int64)


def _scatter(x, dim, index, src, reduce: str, include_self: bool, opname: str) -> Tensor:
    x = lift(x)
    if x.ndim == 0:
        raise BpcliError("needs a tensor with at least one dim", opname)
    axis = norm_axis(dim, x.ndim, opname)
    if not isinstance(src, Tensor):  # a value: one source element per index element
        shape = np.shape(index.data if isinstance(index, Tensor) else index)
        src = const(np.full(shape, src, x.dtype))
    if src.ndim != x.ndim:
        raise BpcliError(f"src of shape {src.shape} needs the rank of x {x.shape}", opname)
    idx = _index(index, x, src.shape, axis, opname)
    return ScatterReduce.apply(x, const(idx), src, axis=axis, reduce=reduce,
                               include_self=bool(include_self))  # fmt: skip


def scatter(x, dim: int, index, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    """torch.scatter: ``x`` with ``src[i][j]`` written at ``[index[i][j]][j]`` (dim=0; ``src``
    a tensor or a number, or ``value=``); ``reduce='add'``/``'multiply'`` combine instead.
    Where positions repeat, which write wins is unspecified, as in torch."""
    if (src is None) == (value is None):
        raise BpcliError("give src or value=, exactly one", "scatter")
    kinds = {None: "none", "add": "sum", "multiply": "prod"}
    if reduce not in kinds:
        raise BpcliError(f"reduce must be 'add' or 'multiply', got {reduce!r}", "scatter")
    return _scatter(x, dim, index, value if src is None else src, kinds[reduce], True,
                    "scatter")  # fmt: skip


def scatter_add(x, dim: int, index, src) -> Tensor:
    """torch.scatter_add: ``x`` with ``src[i][j]`` added at ``[index[i][j]][j]`` (dim=0);
    repeated positions accumulate."""
    return _scatter(x, dim, index, src, "sum", True, "scatter_add")


def scatter_reduce(x, dim: int, index, src, reduce: str, *, include_self: bool = True) -> Tensor:
    """torch.scatter_reduce: ``src`` reduced into ``x`` at ``index`` along ``dim`` with
    ``'sum'``, ``'prod'``, ``'mean'``, ``'amax'`` or ``'amin'``; ``include_self=False`` leaves
    the old values of the written positions out."""
    if reduce not in REDUCES[1:]:
        raise BpcliError(f"reduce must be one of {REDUCES[1:]}, got {reduce!r}", "scatter_reduce")
    return _scatter(x, dim, index, lift(src), reduce, include_self, "scatter_reduce")


def index_put(x, indices, values, accumulate: bool = False) -> Tensor:
    """torch.index_put: ``x`` with ``x[indices] = values`` (``+=`` with ``accumulate=True``,
    repeated positions adding up); ``indices`` is a tuple of int or bool tensors."""
    x = lift(x)
    if not isinstance(indices, tuple | list):
        raise BpcliError("indices must be a tuple of tensors", "index_put")
    arrays = []
    for i in indices:
        a = i.data if isinstance(i, Tensor) else np.asarray(i)
        if a.size == 0 and a.dtype.kind not in "biu":
            a = a.astype(np.int64)
        if a.dtype.kind not in "biu":
            raise BpcliError(f"indices must be int or bool tensors, got {a.dtype}", "index_put")
        # a traced index tensor stays in the graph (an export keeps computing it, so a mask
        # made from the input stays live); an array becomes a constant
        arrays.append(i if isinstance(i, Tensor) and a.dtype == i.dtype else const(a))
    values = lift(values, x)
    try:
        target = np.empty(x.shape, bool)[tuple(a.data for a in arrays)].shape
        np.broadcast_to(np.empty(values.shape, bool), target)
    except IndexError as e:
        raise BpcliError(f"{e} (x of shape {x.shape})", "index_put") from None
    except ValueError:
        raise BpcliError(f"values of shape {values.shape} do not broadcast to the indexed "
                         f"shape {target}", "index_put") from None  # fmt: skip
    return IndexPut.apply(x, values, *arrays, accumulate=bool(accumulate))


def _mask_for(x: Tensor, mask, opname: str) -> Tensor:
    mask = lift(mask)
    if mask.dtype != np.bool_:
        raise BpcliError(f"mask must be a bool tensor, got {mask.dtype}", opname)
    try:
        ok = np.broadcast_shapes(x.shape, mask.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise BpcliError(f"mask {mask.shape} does not broadcast to x {x.shape}", opname)
    return mask


def masked_fill(x, mask, value) -> Tensor:
    """torch.masked_fill: ``x`` with ``value`` (a number or a 0-d tensor, which gets the
    gradient) where the bool ``mask`` (broadcast to ``x``) holds."""
    x = lift(x)
    mask = _mask_for(x, mask, "masked_fill")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise BpcliError(f"value must be a number or a 0-d tensor, got {value.shape}",
                             "masked_fill")  # fmt: skip
        value = astype(value, x.dtype)  # the result keeps x's dtype, as torch's
    else:
        value = const(np.asarray(value, x.dtype))
    return where(mask, value, x)


def masked_scatter(x, mask, source) -> Tensor:
    """torch.masked_scatter: the positions of ``x`` where ``mask`` holds, in row-major order,
    take the first elements of ``source``."""
    x, source = lift(x), lift(source)
    return MaskedScatter.apply(x, _mask_for(x, mask, "masked_scatter"), source)
