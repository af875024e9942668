"""Selection by condition, flat position and search, as torch has them: nonzero (and
``where(cond)``), masked_select, take, take_along_dim, bucketize, searchsorted, one_hot.

Positions and bucket numbers are int64 (int32 with ``out_int32=True``) and carry no gradient.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops import elementwise as _elementwise
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.index import gather, getitem, index_select
from bpcli.engine.ops.shape import expand, reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "bucketize",
    "masked_select",
    "nonzero",
    "one_hot",
    "searchsorted",
    "take",
    "take_along_dim",
    "where",
]  # fmt: skip


class NonZero(Op):
    """y = the int64 positions (n, ndim) of the non-zero x, in row-major order; no gradient"""

    # NOTE: ONNX's NonZero is (ndim, n): the emitter transposes it to torch's layout
    name, onnx, differentiable, saves_inputs = "nonzero", "NonZero", False, False

    def forward(self, x):
        return np.argwhere(x).astype(np.int64)


class MaskedSelect(Op):
    """y = x[mask] as 1-D after broadcasting x and mask together; dx = g put back at the mask
    (zero elsewhere)"""

    name, onnx, saves_inputs = "masked_select", None, False

    def forward(self, x, mask):
        self.mask = np.broadcast_to(mask, np.broadcast_shapes(x.shape, mask.shape))
        return np.broadcast_to(x, self.mask.shape)[self.mask]

    def backward(self, g):
        dx = np.zeros(self.mask.shape, g.dtype)
        dx[self.mask] = g
        return dx, None  # the engine sums the broadcast gradient down to x's shape


class Bucketize(Op):
    """y = the int64 bucket of each x among 1-D ascending boundaries (torch.bucketize: b[i-1] <
    x <= b[i], or b[i-1] <= x < b[i] with right); no gradient"""

    name, onnx, differentiable, saves_inputs = "bucketize", None, False, False

    def forward(self, x, boundaries, right, out_int32):
        y = np.searchsorted(boundaries, x, side="right" if right else "left")
        return np.asarray(y, np.int32 if out_int32 else np.int64)


class SearchSorted(Op):
    """y = the int64 insertion points of values in the last dim of the ascending sequence
    (leading dims paired, as torch.searchsorted); no gradient"""

    name, onnx, differentiable, saves_inputs = "searchsorted", None, False, False

    def forward(self, seq, values, *sorter, side, out_int32):
        if sorter:
            seq = np.take_along_axis(seq, sorter[0], -1)
        if seq.ndim == 1:
            y = np.searchsorted(seq, values, side=side)
        else:  # one search per row of the leading dims
            rows = seq.reshape(-1, seq.shape[-1])
            vals = values.reshape(len(rows), -1)
            y = np.stack([np.searchsorted(r, v, side=side) for r, v in zip(rows, vals)])
            y = y.reshape(values.shape)
        return np.asarray(y, np.int32 if out_int32 else np.int64)


class OneHot(Op):
    """y[..., c] = 1 where x[...] == c, else 0 (int64, torch.nn.functional.one_hot); no gradient"""

    # NOTE: ONNX's OneHot takes depth and (off, on) values as inputs: the emitter adds them
    name, onnx, differentiable, saves_inputs = "one_hot", "OneHot", False, False

    def forward(self, x, num_classes):
        y = np.zeros((*x.shape, num_classes), np.int64)
        np.put_along_axis(y, x[..., None].astype(np.intp), 1, -1)
        return y


# -- functional API ----------------------------------------------------------------------------


def nonzero(x, *, as_tuple: bool = False):
    """The int64 positions of the non-zero elements: an (n, ndim) tensor, or with
    ``as_tuple=True`` one 1-D tensor per dim (a 0-d input counts as 1-D there), as torch."""
    x = lift(x)
    if as_tuple:
        if x.ndim == 0:
            x = reshape(x, 1)
        nz = NonZero.apply(x)
        return tuple(getitem(nz, (slice(None), d)) for d in range(x.ndim))
    return NonZero.apply(x)


def where(condition, input=None, other=None) -> Tensor:
    """torch.where: ``input`` where ``condition`` holds, else ``other`` (broadcast); with the
    condition alone, ``nonzero(condition, as_tuple=True)``."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise BpcliError("give both input and other, or neither", "where")
    return _elementwise.where(condition, input, other)


def _bool_mask(mask, opname: str) -> Tensor:
    mask = lift(mask)
    if mask.dtype != np.bool_:
        raise BpcliError(f"mask must be a bool tensor, got {mask.dtype}", opname)
    return mask


def masked_select(x, mask) -> Tensor:
    """The elements of ``x`` where the bool ``mask`` holds (both broadcast), as a 1-D tensor."""
    x, mask = lift(x), _bool_mask(mask, "masked_select")
    try:
        np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise BpcliError(f"mask {mask.shape} does not broadcast with x {x.shape}",
                         "masked_select") from None  # fmt: skip
    return MaskedSelect.apply(x, mask)


def take(x, index) -> Tensor:
    """torch.take: the elements of ``x`` at flat (row-major) positions ``index`` (negatives
    count from the end); the result has the shape of ``index``."""
    x = lift(x)
    if x.size == 0 and np.size(index.data if isinstance(index, Tensor) else index):
        raise BpcliError("cannot take from an empty tensor", "take")
    return index_select(reshape(x, -1), 0, index)


def take_along_dim(x, indices, dim: int | None = None) -> Tensor:
    """torch.take_along_dim: ``gather`` along ``dim`` after broadcasting ``x`` and
    ``indices`` against each other off that dim; the flattened ``x`` when ``dim`` is None."""
    x = lift(x)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if dim is None:
        return take(x, const(idx.reshape(-1)))
    if idx.ndim != x.ndim:
        raise BpcliError(f"indices of shape {idx.shape} need the rank of x {x.shape}",
                         "take_along_dim")  # fmt: skip
    axis = norm_axis(dim, x.ndim, "take_along_dim")
    try:
        xs = list(np.broadcast_shapes((*x.shape[:axis], 1, *x.shape[axis + 1 :]),
                                      (*idx.shape[:axis], 1, *idx.shape[axis + 1 :])))  # fmt: skip
    except ValueError:
        raise BpcliError(f"x {x.shape} and indices {idx.shape} do not broadcast off dim {dim}",
                         "take_along_dim") from None  # fmt: skip
    ishape = list(xs)
    xs[axis], ishape[axis] = x.shape[axis], idx.shape[axis]
    return gather(expand(x, tuple(xs)), axis, const(np.broadcast_to(idx, tuple(ishape))))


def bucketize(x, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The index (int64) of the bucket of each element among 1-D ascending ``boundaries``, as
    torch.bucketize (``right=`` picks which side of a boundary value belongs to it)."""
    x, b = lift(x), lift(boundaries)
    if b.ndim != 1:
        raise BpcliError(f"boundaries must be 1-D, got shape {b.shape}", "bucketize")
    return Bucketize.apply(x, b, right=bool(right), out_int32=bool(out_int32))


def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter=None) -> Tensor:  # fmt: skip
    """torch.searchsorted: where ``values`` would go in the last dim of ``sorted_sequence``
    (1-D, or with leading dims matching those of ``values``) to keep it sorted."""
    seq, vals = lift(sorted_sequence), lift(values)
    if side not in (None, "left", "right"):
        raise BpcliError(f"side must be 'left' or 'right', got {side!r}", "searchsorted")
    if side == "left" and right:
        raise BpcliError("side='left' contradicts right=True", "searchsorted")
    side = "right" if right or side == "right" else "left"
    if seq.ndim == 0:
        raise BpcliError("sorted_sequence needs at least one dim", "searchsorted")
    if seq.ndim > 1 and (vals.ndim != seq.ndim or vals.shape[:-1] != seq.shape[:-1]):
        raise BpcliError(f"values {vals.shape} need the leading dims of sorted_sequence "
                         f"{seq.shape}", "searchsorted")  # fmt: skip
    extra = []
    if sorter is not None:
        s = sorter.data if isinstance(sorter, Tensor) else np.asarray(sorter)
        if s.shape != seq.shape or s.dtype.kind not in "iu":
            raise BpcliError(f"sorter must be integer with shape {seq.shape}, got {s.shape} "
                             f"{s.dtype}", "searchsorted")  # fmt: skip
        extra = [const(s.astype(np.int64))]
    return SearchSorted.apply(seq, vals, *extra, side=side, out_int32=bool(out_int32))


def one_hot(x, num_classes: int = -1) -> Tensor:
    """torch.nn.functional.one_hot: int64 ``(*x.shape, num_classes)`` with a 1 at each class
    index; ``num_classes=-1`` uses ``x.max() + 1``."""
    x = lift(x)
    if x.dtype.kind not in "iu":
        raise BpcliError(f"needs an integer (class index) tensor, got {x.dtype}", "one_hot")
    arr = x.data
    if num_classes == -1:
        if arr.size == 0:
            raise BpcliError("cannot infer num_classes from an empty tensor", "one_hot")
        num_classes = int(arr.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or \
            num_classes < 0:  # fmt: skip
        raise BpcliError(f"num_classes must be -1 or >= 0, got {num_classes!r}", "one_hot")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise BpcliError(f"class values in [{arr.min()}, {arr.max()}] are outside "
                         f"0..{num_classes - 1}", "one_hot")  # fmt: skip
    return OneHot.apply(x, num_classes=int(num_classes))
