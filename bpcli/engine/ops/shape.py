"""Shape and movement: reshape, transpose, squeeze, expand, concat, stack, split, pad, repeat, tile.

Reshape, transpose, squeeze, unsqueeze and expand return numpy views (no copy in forward);
their backward is the inverse view of the gradient. ``expand`` is the explicit broadcast op.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "reshape", "flatten", "transpose", "permute", "swapaxes", "squeeze", "unsqueeze", "expand",
    "concat", "cat", "stack", "split", "chunk", "pad", "repeat", "tile",
]  # fmt: skip


def norm_axis(axis, ndim: int, opname: str) -> int:
    """One axis (negatives allowed) as a non-negative int in ``range(ndim)``."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise BpcliError(f"axis must be an int, got {axis!r}", opname)
    if not -ndim <= axis < ndim:
        raise BpcliError(f"axis {axis} is out of range for a tensor with {ndim} dims", opname)
    return int(axis) % ndim


def _shape_args(shape) -> tuple:
    """``f(x, 2, 3)`` and ``f(x, (2, 3))`` both as ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = shape[0]
    return tuple(int(s) for s in shape)


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


class Concat(Op):
    """y = concatenate(xs, axis); dxs = split(g, sizes, axis)"""

    name, onnx, saves_inputs = "concat", "Concat", False

    def forward(self, *xs, axis):
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, self.bounds, axis=self.attrs["axis"]))


class Stack(Op):
    """y = stack(xs, axis); dxs[i] = take(g, i, axis)"""

    name, onnx, saves_inputs = "stack", None, False  # exported as Unsqueeze + Concat

    def forward(self, *xs, axis):
        return np.stack(xs, axis=axis)

    def backward(self, g):
        g = np.moveaxis(g, self.attrs["axis"], 0)
        return tuple(g[i] for i in range(g.shape[0]))


class Split(Op):
    """ys = split(x, sizes, axis); dx = concatenate(gs, axis)"""

    name, onnx, saves_inputs = "split", "Split", False
    # NOTE: the number of outputs varies per call; forward sets it on the instance (the engine
    # reads ``op.n_outputs`` when it wraps outputs and completes missing gradients).
    n_outputs = 2

    def forward(self, x, sizes, axis):
        self.n_outputs = len(sizes)
        return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))

    def backward(self, *gs):
        return np.concatenate(gs, axis=self.attrs["axis"])


class Pad(Op):
    """y = pad(x, pads, mode, value); dx = g cropped, plus the folded-back borders (reflect,
    replicate, circular)"""

    name, onnx, saves_inputs = "pad", "Pad", False

    def forward(self, x, pads, mode, value):
        self.in_shape = x.shape
        grow = [(max(b, 0), max(a, 0)) for b, a in pads]
        if mode == "constant":
            y = np.pad(x, grow, mode="constant", constant_values=value)
        else:
            y = np.pad(x, grow, mode={"replicate": "edge", "circular": "wrap"}.get(mode, mode))
        # torch crops where a constant pad is negative
        crop = tuple(slice(-min(b, 0), n + min(a, 0)) for (b, a), n in zip(pads, y.shape))
        return y[crop] if any(b < 0 or a < 0 for b, a in pads) else y

    def backward(self, g):
        pads, mode = self.attrs["pads"], self.attrs["mode"]
        if any(b < 0 or a < 0 for b, a in pads):
            g = np.pad(g, [(max(-b, 0), max(-a, 0)) for b, a in pads])
            pads = tuple((max(b, 0), max(a, 0)) for b, a in pads)
        for axis, ((b, a), n) in enumerate(zip(pads, self.in_shape)):
            if b or a:
                g = _fold_pad(g, axis, b, a, n, mode)
        return g


def _fold_pad(g, axis, b, a, n, mode):
    """The gradient of padding one axis by (b, a): the centre plus each border added back to
    the input positions it was copied from."""

    def part(lo, hi, step=1):
        idx = [slice(None)] * g.ndim
        idx[axis] = slice(lo, hi, step)
        return tuple(idx)

    dx = g[part(b, b + n)]
    if mode == "constant":
        return dx
    dx = dx.copy()
    if mode == "reflect":
        if b:
            dx[part(1, b + 1)] += g[part(b - 1, None, -1)]
        if a:
            dx[part(n - 1 - a, n - 1)] += g[part(b + n + a - 1, b + n - 1, -1)]
    elif mode == "replicate":
        if b:
            dx[part(0, 1)] += g[part(0, b)].sum(axis=axis, keepdims=True)
        if a:
            dx[part(n - 1, n)] += g[part(b + n, None)].sum(axis=axis, keepdims=True)
    else:  # circular
        if b:
            dx[part(n - b, n)] += g[part(0, b)]
        if a:
            dx[part(0, a)] += g[part(b + n, None)]
    return dx


class Repeat(Op):
    """y = repeat(x, repeats, axis) (numpy); dx = sum of g over each element's copies"""

    name, onnx, saves_inputs = "repeat", None, False  # exported as Gather with constant indices

    def forward(self, x, repeats, axis):
        self.in_shape = x.shape
        return np.repeat(x, repeats, axis=axis)

    def backward(self, g):
        repeats, axis = self.attrs["repeats"], self.attrs["axis"]
        n = self.in_shape[axis]
        if isinstance(repeats, int):
            shape = g.shape[:axis] + (n, repeats) + g.shape[axis + 1 :]
            return g.reshape(shape).sum(axis=axis + 1)
        counts = np.asarray(repeats, dtype=np.intp)
        dx = np.zeros(g.shape[:axis] + (n,) + g.shape[axis + 1 :], g.dtype)
        keep = np.flatnonzero(counts)
        if keep.size:
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[keep]
            idx = [slice(None)] * g.ndim
            idx[axis] = keep
            dx[tuple(idx)] = np.add.reduceat(g, starts, axis=axis)
        return dx


class Tile(Op):
    """y = tile(x, reps); dx = g reshaped to (r0, n0, r1, n1, ...) summed over the r axes"""

    name, onnx, saves_inputs = "tile", "Tile", False

    def forward(self, x, reps):
        self.in_shape = x.shape
        return np.tile(x, reps)

    def backward(self, g):
        d = g.ndim
        reps = (1,) * (d - len(self.attrs["reps"])) + tuple(self.attrs["reps"])
        shape = (1,) * (d - len(self.in_shape)) + self.in_shape
        g = g.reshape([v for pair in zip(reps, shape) for v in pair])
        return g.sum(axis=tuple(range(0, 2 * d, 2))).reshape(self.in_shape)


# -- functional API -------------------------------------------------------------------------


def reshape(x, *shape) -> Tensor:
    """``x`` with a new shape of the same size (one dim may be -1); a view where numpy gives one."""
    x = lift(x)
    shape = _shape_args(shape)
    known = math.prod(s for s in shape if s != -1)
    free = shape.count(-1)
    bad = free > 1 or any(s < -1 for s in shape)
    if not bad:
        if free:
            bad = known == 0 or x.size % known != 0
            shape = tuple(x.size // known if s == -1 else s for s in shape) if not bad else shape
        else:
            bad = known != x.size
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
    shape = x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    return reshape(x, shape)


def transpose(x, *axes) -> Tensor:
    """numpy's transpose: permute the axes (reverse them when none are given)."""
    x = lift(x)
    axes = _shape_args(axes) if axes and axes != (None,) else tuple(range(x.ndim))[::-1]
    norm = tuple(norm_axis(a, x.ndim, "transpose") for a in axes) if x.ndim else axes
    if sorted(norm) != list(range(x.ndim)):
        raise BpcliError(f"axes {axes} are not a permutation of a {x.ndim}-d tensor's", "transpose")
    if norm == tuple(range(x.ndim)):
        return x
    return Transpose.apply(x, axes=norm)


permute = transpose


def swapaxes(x, axis0: int, axis1: int) -> Tensor:
    x = lift(x)
    perm = list(range(x.ndim))
    a, b = norm_axis(axis0, x.ndim, "swapaxes"), norm_axis(axis1, x.ndim, "swapaxes")
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, tuple(perm))


def _axes(axis, ndim: int, opname: str) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = tuple(norm_axis(a, ndim, opname) for a in axes)
    if len(set(out)) != len(out):
        raise BpcliError(f"repeated axis in {axis}", opname)
    return out


def squeeze(x, axis=None, *, dim=None) -> Tensor:
    """Drop size-1 axes (all of them, or those given; naming a larger axis is an error)."""
    x = lift(x)
    axis = dim if dim is not None else axis
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = _axes(axis, x.ndim, "squeeze")
        big = [a for a in axes if x.shape[a] != 1]
        if big:
            raise BpcliError(f"cannot squeeze axis {big[0]} of size {x.shape[big[0]]} "
                             f"(shape {x.shape})", "squeeze")  # fmt: skip
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
    return Unsqueeze.apply(x, axes=_axes(axis, x.ndim + n, "unsqueeze"))


def expand(x, *shape) -> Tensor:
    """Broadcast ``x`` to ``shape`` (torch.expand: -1 keeps a dim, new dims go in front)."""
    x = lift(x)
    shape = _shape_args(shape)
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


def _joined(tensors, opname: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not len(tensors):
        raise BpcliError("needs a non-empty list of tensors", opname)
    ts = [lift(t) for t in tensors]
    floats = {t.dtype for t in ts if t.dtype.kind == "f"}
    if len(floats) > 1:
        raise BpcliError(f"dtype mismatch {sorted(map(str, floats))}: cast with .astype()", opname)
    if floats:
        dt = floats.pop()
        ts = [t if t.dtype == dt else lift(t.data.astype(dt)) for t in ts]
    return ts


def concat(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join tensors along an existing axis (numpy's concatenate, torch.cat)."""
    ts = _joined(tensors, "concat")
    nd = ts[0].ndim
    if nd == 0:
        raise BpcliError("cannot concatenate 0-d tensors (use stack)", "concat")
    ax = norm_axis(dim if dim is not None else axis, nd, "concat")
    ref = ts[0].shape
    for t in ts[1:]:
        if t.ndim != nd or t.shape[:ax] + t.shape[ax + 1 :] != ref[:ax] + ref[ax + 1 :]:
            shapes = [t.shape for t in ts]
            raise BpcliError(f"shapes {shapes} differ outside axis {ax}", "concat")
    if len(ts) == 1:
        return ts[0]
    return Concat.apply(*ts, axis=ax)


cat = concat


def stack(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    ts = _joined(tensors, "stack")
    if any(t.shape != ts[0].shape for t in ts):
        raise BpcliError(f"stack needs equal shapes, got {[t.shape for t in ts]}", "stack")
    ax = norm_axis(dim if dim is not None else axis, ts[0].ndim + 1, "stack")
    return Stack.apply(*ts, axis=ax)


def split(x, split_size_or_sections, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """torch.split: an int is a chunk size (the last chunk may be smaller), a list the sizes."""
    x = lift(x)
    ax = norm_axis(dim if dim is not None else axis, x.ndim, "split")
    n = x.shape[ax]
    s = split_size_or_sections
    if isinstance(s, int | np.integer):
        if s <= 0 and not (s == 0 and n == 0):
            raise BpcliError(f"split size must be positive, got {s}", "split")
        sizes = tuple(min(s, n - i) for i in range(0, n, s)) if n else (0,)
    else:
        sizes = tuple(int(v) for v in s)
        if sum(sizes) != n or any(v < 0 for v in sizes):
            raise BpcliError(f"sizes {list(sizes)} do not add up to axis {ax} of shape {x.shape}",
                             "split")  # fmt: skip
    return Split.apply(x, sizes=sizes, axis=ax)


def chunk(x, chunks: int, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """torch.chunk: at most ``chunks`` pieces of size ceil(n / chunks)."""
    x = lift(x)
    if chunks <= 0:
        raise BpcliError(f"chunks must be positive, got {chunks}", "chunk")
    ax = norm_axis(dim if dim is not None else axis, x.ndim, "chunk")
    n = x.shape[ax]
    return split(x, max(-(-n // chunks), 1), axis=ax) if n else split(x, [0], axis=ax)


def pad(x, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad: ``pad`` = (last_before, last_after, prev_before, ...)."""
    x = lift(x)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise BpcliError(f"pad {pad} needs an even length of at most 2 * {x.ndim}", "pad")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise BpcliError(f"unknown mode {mode!r} (constant, reflect, replicate, circular)", "pad")
    k = len(pad) // 2
    pads = [(0, 0)] * (x.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in range(k)][::-1]
    for (b, a), n in zip(pads, x.shape):
        if mode != "constant" and (b < 0 or a < 0 or (n == 0 and (a or b))):
            raise BpcliError(f"{mode} padding {pad} must be non-negative on a non-empty axis "
                             f"(shape {x.shape})", "pad")  # fmt: skip
        if mode == "reflect" and (b >= n or a >= n) or mode == "circular" and (b > n or a > n):
            raise BpcliError(f"{mode} padding {pad} is too large for shape {x.shape}", "pad")
        if n + b + a < 0:
            raise BpcliError(f"padding {pad} leaves a negative size for shape {x.shape}", "pad")
    return Pad.apply(x, pads=tuple(pads), mode=mode, value=float(value))


def repeat(x, repeats, axis: int | None = None, *, dim=None) -> Tensor:
    """numpy's repeat (torch.repeat_interleave): repeat each element; no axis flattens first."""
    x = lift(x)
    axis = dim if dim is not None else axis
    if axis is None:
        x, axis = reshape(x, -1), 0
    ax = norm_axis(axis, x.ndim, "repeat")
    if isinstance(repeats, Tensor | np.ndarray) and np.ndim(repeats) == 0:
        repeats = int(np.asarray(repeats))
    if isinstance(repeats, int | np.integer):
        if repeats < 0:
            raise BpcliError(f"repeats must be >= 0, got {repeats}", "repeat")
        return Repeat.apply(x, repeats=int(repeats), axis=ax)
    reps = tuple(int(r) for r in np.asarray(repeats).ravel())
    if len(reps) == 1:
        return repeat(x, reps[0], axis=ax)
    if len(reps) != x.shape[ax] or any(r < 0 for r in reps):
        raise BpcliError(f"{len(reps)} repeat counts for axis {ax} of shape {x.shape}", "repeat")
    return Repeat.apply(x, repeats=reps, axis=ax)


def tile(x, reps) -> Tensor:
    """numpy's tile (torch.tile): repeat the whole tensor ``reps[i]`` times along each axis."""
    x = lift(x)
    reps = (int(reps),) if isinstance(reps, int | np.integer) else tuple(int(r) for r in reps)
    if any(r < 0 for r in reps):
        raise BpcliError(f"reps must be >= 0, got {reps}", "tile")
    return Tile.apply(x, reps=reps)
