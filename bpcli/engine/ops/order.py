"""Order statistics along one dim, as torch has them: sort, argsort, msort, kthvalue, median
and mode. The ``(values, indices)`` results are ``return_types`` named tuples, indices int64.

Sorting is stable (ties keep index order, also with ``descending=True``) and nan sorts as the
largest value, as torch's. The value ops pick one element per slice: their gradient goes to
the picked index (median without a dim spreads it evenly over the equal elements, as torch).
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.return_types import values_indices
from bpcli.engine.ops.scan_more import scatter_add_along
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["argsort", "kthvalue", "median", "mode", "msort", "sort"]


def sort_indices(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort (int64); descending keeps the lower index first among ties."""
    if descending:  # sorting the reversed axis (negation would wrap uints and move nan)
        n = x.shape[axis]
        idx = n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    else:
        idx = np.argsort(x, axis=axis, kind="stable")
    return idx.astype(np.int64)


class _Pick(Op):
    """Base of the ops that pick elements along ``axis`` at computed indices."""

    n_outputs, saves_inputs = 2, False

    def pick(self, x, axis, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x, axis, **attrs):
        self.shape = x.shape
        self.idx = self.pick(x, axis, **attrs)
        vals = np.take_along_axis(x, self.idx, axis)
        if not attrs.get("keepdims", True):
            vals, self.idx = np.squeeze(vals, axis), np.squeeze(self.idx, axis)
        return vals, self.idx

    def backward(self, g, _gidx):
        a = self.attrs
        axis = a["axis"]
        idx = self.idx if a.get("keepdims", True) else np.expand_dims(self.idx, axis)
        g = g if a.get("keepdims", True) else np.expand_dims(g, axis)
        return scatter_add_along(g, idx, axis, self.shape)


class Sort(_Pick):
    """(y, i) = x sorted along axis (stable; nan largest) and the int64 permutation;
    dx = g put back at i"""

    name, onnx = "sort", "TopK"

    def pick(self, x, axis, descending):
        return sort_indices(x, axis, descending)


def _nonempty(x: np.ndarray, axis: int, opname: str) -> None:
    if x.shape[axis] == 0:
        raise BpcliError(f"cannot pick from an empty dim {axis} of shape {x.shape}", opname)


class KthValue(_Pick):
    """(y, i) = the k-th smallest x along axis and its int64 index; dx = g at i"""

    name, onnx = "kthvalue", None

    def pick(self, x, axis, k, keepdims):
        return np.take(sort_indices(x, axis, False), [k - 1], axis=axis)


class Median(_Pick):
    """(y, i) = the lower median of x along axis (nan, at its first index, if any) and its
    int64 index; dx = g at i"""

    name, onnx = "median", None

    def pick(self, x, axis, keepdims):
        _nonempty(x, axis, "median")
        idx = np.take(sort_indices(x, axis, False), [(x.shape[axis] - 1) // 2], axis=axis)
        if x.dtype.kind == "f":
            nan = np.isnan(x)
            first = np.argmax(nan, axis=axis, keepdims=True)
            idx = np.where(np.any(nan, axis=axis, keepdims=True), first, idx)
        return idx


class Mode(_Pick):
    """(y, i) = the most frequent x along axis (the smallest such value) and the int64 index of
    its last occurrence; dx = g at i"""

    name, onnx = "mode", None

    def pick(self, x, axis, keepdims):
        _nonempty(x, axis, "mode")
        order = np.moveaxis(sort_indices(x, axis, False), axis, -1)
        s = np.take_along_axis(np.moveaxis(x, axis, -1), order, -1)
        n = s.shape[-1]
        pos = np.broadcast_to(np.arange(n), s.shape)
        new_run = np.ones(s.shape, bool)
        new_run[..., 1:] = s[..., 1:] != s[..., :-1]
        start = np.maximum.accumulate(np.where(new_run, pos, 0), axis=-1)
        last_run = np.ones(s.shape, bool)
        last_run[..., :-1] = new_run[..., 1:]
        end = np.flip(np.minimum.accumulate(np.flip(np.where(last_run, pos, n), -1), -1), -1)
        best = np.argmax(end - start, axis=-1)[..., None]  # first longest run: smallest value
        # stable order: the run's last element has the largest original index
        idx = np.take_along_axis(order, np.take_along_axis(end, best, -1), -1)
        return np.moveaxis(idx, -1, axis)


class MedianAll(Op):
    """y = the lower median of all x (nan if any); dx = g / count at the elements equal to y
    (at the nans if y is nan), as torch"""

    name, onnx, saves_inputs = "median_all", None, False

    def forward(self, x):
        self.x, flat = x, x.reshape(-1)
        if flat.size == 0 or (x.dtype.kind == "f" and np.isnan(flat).any()):
            self.y = np.asarray(np.nan, x.dtype)
        else:
            k = (flat.size - 1) // 2
            self.y = np.asarray(np.partition(flat, k)[k])
        return self.y

    def backward(self, g):
        mask = np.isnan(self.x) if np.isnan(self.y) else self.x == self.y
        return mask * (g / np.sum(mask, dtype=g.dtype))


# -- functional API ----------------------------------------------------------------------------


def _dim(x: Tensor, dim, opname: str) -> int:
    return norm_axis(dim, x.ndim or 1, opname)


def _pick(op, x, dim, keepdim, name, **attrs):
    x = lift(x)
    if x.ndim == 0:  # torch: a 0-d tensor is one element along dim 0 (or -1)
        _dim(x, dim, name)
        v, i = _pick(op, reshape(x, 1), 0, keepdim, name, **attrs)
        return values_indices(name, reshape(v, ()), reshape(i, ()))
    axis = _dim(x, dim, name)
    v, i = op.apply(x, axis=axis, keepdims=bool(keepdim), **attrs)
    return values_indices(name, v, i)


def sort(x, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """Sorted values along ``dim`` and their int64 indices: ``(values, indices)``, as
    torch.sort. The sort is always stable (``stable=`` is accepted for torch's signature)."""
    del stable  # NOTE: always stable, which is one valid result of torch's unstable sort too
    x = lift(x)
    if x.ndim == 0:
        _dim(x, dim, "sort")
        v, i = sort(reshape(x, 1), 0, descending)
        return values_indices("sort", reshape(v, ()), reshape(i, ()))
    v, i = Sort.apply(x, axis=_dim(x, dim, "sort"), descending=bool(descending))
    return values_indices("sort", v, i)


def argsort(x, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    """The int64 indices that sort ``x`` along ``dim`` (torch.argsort; stable)."""
    return sort(x, dim, descending, stable=stable).indices


def msort(x) -> Tensor:
    """``x`` sorted along its first dim (torch.msort)."""
    return sort(x, 0).values


def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest value (1-based) along ``dim`` and its int64 index, as
    torch.kthvalue. Among equal values the index is that of a stable sort (torch may pick
    another of the equal ones)."""
    x = lift(x)
    n = x.shape[_dim(x, dim, "kthvalue")] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise BpcliError(f"k={k!r} is outside 1..{n} (the size of dim {dim})", "kthvalue")
    return _pick(KthValue, x, dim, keepdim, "kthvalue", k=int(k))


def median(x, dim: int | None = None, keepdim: bool = False):
    """torch.median: without ``dim`` the lower median of all elements (a 0-d tensor); with
    ``dim`` the ``(values, indices)`` of the lower median along it. nan propagates."""
    x = lift(x)
    if dim is None:
        if x.size == 0 and x.dtype.kind != "f":
            raise BpcliError(f"median of an empty {x.dtype} tensor", "median")
        return MedianAll.apply(x)
    return _pick(Median, x, dim, keepdim, "median")


def mode(x, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest of equally frequent ones) and the
    int64 index of its last occurrence: ``(values, indices)``, as torch.mode."""
    return _pick(Mode, x, dim, keepdim, "mode")
