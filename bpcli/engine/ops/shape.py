"""Shape and movement ops that are views: reshape, flatten, transpose, squeeze, expand.

Their forward returns a numpy view (no copy) and their backward is the inverse view of the
gradient. ``expand`` is the explicit broadcast op. The ops that copy (concat, stack, split,
pad, repeat, tile) live in ``join.py`` and are re-exported here.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import axes_tuple, norm_axis, shape_args
from bpcli.engine.ops.join import (
    cat,
    chunk,
    concat,
    pad,
    repeat,
    repeat_interleave,
    split,
    stack,
    tile,
)  # fmt: skip
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "cat", "chunk", "concat", "expand", "flatten", "mT", "pad", "permute", "repeat",
    "repeat_interleave", "reshape", "reverse_dims", "split", "squeeze", "stack", "swapaxes",
    "swapdims", "t", "tile", "transpose", "unsqueeze",
]  # fmt: skip


class Reshape(Op):
    """y = reshape(x, shape); dx = reshape(g, x.shape)"""

    name, onnx, saves_inputs = "reshape", "Reshape", False

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Transpose(Op):
    """y = transpose(x, axes); dx = transpose(g, argsort(axes))"""

    name, onnx, saves_inputs = "transpose", "Transpose", False

    def forward(self, x, axes):
        return x.transpose(axes)

    def backward(self, g):
        return g.transpose(np.argsort(self.attrs["axes"]))


class Squeeze(Op):
    """y = squeeze(x, axes) (size-1 axes dropped); dx = reshape(g, x.shape)"""

    name, onnx, saves_inputs = "squeeze", "Squeeze", False

    def forward(self, x, axes):
        self.in_shape = x.shape
        return x.squeeze(axes)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Unsqueeze(Op):
    """y = expand_dims(x, axes); dx = reshape(g, x.shape)"""

    name, onnx, saves_inputs = "unsqueeze", "Unsqueeze", False

    def forward(self, x, axes):
        self.in_shape = x.shape
        return np.expand_dims(x, axes)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Expand(Op):
    """y = broadcast_to(x, shape); dx = sum of g over the broadcast axes"""

    name, onnx, saves_inputs = "expand", "Expand", False

    def forward(self, x, shape):
        # NOTE: a read-only view, as torch.expand's result must not be written to either.
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return g  # the engine's unbroadcast sums g down to x's shape: that sum is this VJP


# -- functional API -------------------------------------------------------------------------


def reshape(x, *shape) -> Tensor:
    """``x`` with a new shape of the same size (one dim may be -1); a view where numpy gives one."""
    x = lift(x)
    shape = shape_args(shape)
    known = math.prod(s for s in shape if s != -1)
    free = shape.count(-1)
    bad = free > 1 or any(s < -1 for s in shape)
    n = x.data.size
    if not bad:
        if free:
            bad = known == 0 or n % known != 0
            shape = tuple(n // known if s == -1 else s for s in shape) if not bad else shape
        else:
            bad = known != n
    if bad:
        raise BpcliError(f"cannot reshape a tensor of shape {x.shape} to {shape}", "reshape")
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (torch.flatten)."""
    x = lift(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = norm_axis(start_dim, x.ndim, "flatten")
    e = norm_axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise BpcliError(f"start_dim {start_dim} comes after end_dim {end_dim}", "flatten")
    shape = (*x.shape[:s], math.prod(x.shape[s : e + 1]), *x.shape[e + 1 :])
    return reshape(x, shape)


def permute(x, *dims) -> Tensor:
    """torch.permute: reorder all dims (``permute(x, 2, 0, 1)`` or ``permute(x, (2, 0, 1))``)."""
    x = lift(x)
    dims = shape_args(dims)
    norm = tuple(norm_axis(a, x.ndim, "permute") for a in dims) if x.ndim else dims
    if sorted(norm) != list(range(x.ndim)):
        raise BpcliError(f"dims {dims} are not a permutation of a {x.ndim}-d tensor's", "permute")
    if norm == tuple(range(x.ndim)):
        return x
    return Transpose.apply(x, axes=norm)


def transpose(x, dim0=None, dim1=None, *rest) -> Tensor:
    """torch.transpose: swap dims ``dim0`` and ``dim1`` (a full permutation is ``permute``)."""
    x = lift(x)
    if rest or isinstance(dim0, tuple | list) or dim0 is None or dim1 is None:
        raise BpcliError(
            "transpose swaps two dims, transpose(x, dim0, dim1); for a permutation use "
            "permute(x, dims), for all dims reversed x.T",
            "transpose",
        )
    a, b = norm_axis(dim0, x.ndim, "transpose"), norm_axis(dim1, x.ndim, "transpose")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


swapaxes = swapdims = transpose


def t(x) -> Tensor:
    """torch.t: a 2-D tensor transposed; 0-d and 1-d tensors as they are."""
    x = lift(x)
    if x.ndim > 2:
        raise BpcliError(f"t() needs at most 2 dims, got shape {x.shape} (use transpose)", "t")
    return permute(x, tuple(range(x.ndim))[::-1])


def reverse_dims(x) -> Tensor:
    """``x.T``: all dims reversed."""
    x = lift(x)
    return permute(x, tuple(range(x.ndim))[::-1])


def mT(x) -> Tensor:  # noqa: N802 - torch's name
    """``x.mT``: the last two dims swapped (a batch of matrices transposed)."""
    x = lift(x)
    if x.ndim < 2:
        raise BpcliError(f"mT needs at least 2 dims, got shape {x.shape}", "mT")
    return transpose(x, -2, -1)


def squeeze(x, axis=None, *, dim=None) -> Tensor:
    """Drop size-1 axes (all of them, or those given; a named larger axis stays, as torch)."""
    x = lift(x)
    axis = dim if dim is not None else axis
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        # torch: a named dim of size > 1 is left as it is (0-d tensors take dim 0 or -1)
        axes = axes_tuple(axis, max(x.ndim, 1), "squeeze") if x.ndim or axis != () else ()
        axes = tuple(a for a in axes if x.ndim and x.shape[a] == 1)
    if not axes:
        return x
    return Squeeze.apply(x, axes=axes)


def unsqueeze(x, axis=None, *, dim=None) -> Tensor:
    """Insert size-1 axes at ``axis`` (an int or a tuple, positions in the result)."""
    x = lift(x)
    axis = dim if dim is not None else axis
    if axis is None:
        raise BpcliError("unsqueeze needs an axis", "unsqueeze")
    n = 1 if isinstance(axis, int | np.integer) else len(axis)
    return Unsqueeze.apply(x, axes=axes_tuple(axis, x.ndim + n, "unsqueeze"))


def expand(x, *shape) -> Tensor:
    """Broadcast ``x`` to ``shape`` (torch.expand: -1 keeps a dim, new dims go in front)."""
    x = lift(x)
    shape = shape_args(shape)
    lead = len(shape) - x.ndim
    ok = lead >= 0
    out = []
    for i, s in enumerate(shape):
        n = x.shape[i - lead] if i >= lead else None
        if s == -1:
            ok &= n is not None
            s = n if n is not None else s
        ok &= s >= 0 and (n is None or n == s or n == 1)
        out.append(s)
    if not ok:
        raise BpcliError(f"cannot expand shape {x.shape} to {shape}", "expand")
    out = tuple(out)
    if out == x.shape:
        return x
    return Expand.apply(x, shape=out)
