"""Shape ops that copy: concat, stack, split/chunk, pad, repeat, tile.

Their public functions are re-exported by ``shape.py`` (which ``functional`` star-imports).
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.dtypes import result_dtype
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import norm_axis
from bpcli.engine.ops.elementwise import astype
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "cat", "chunk", "concat", "pad", "repeat", "repeat_interleave", "split", "stack", "tile",
]  # fmt: skip


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
    n_outputs = 2  # a tuple of len(sizes) outputs

    def forward(self, x, sizes, axis):
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
        crop = tuple(
            slice(-min(b, 0), n + min(a, 0)) for (b, a), n in zip(pads, y.shape, strict=False)
        )
        return y[crop] if any(b < 0 or a < 0 for b, a in pads) else y

    def backward(self, g):
        pads, mode = self.attrs["pads"], self.attrs["mode"]
        if any(b < 0 or a < 0 for b, a in pads):
            g = np.pad(g, [(max(-b, 0), max(-a, 0)) for b, a in pads])
            pads = tuple((max(b, 0), max(a, 0)) for b, a in pads)
        for axis, ((b, a), n) in enumerate(zip(pads, self.in_shape, strict=False)):
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
    """y = repeat(x, repeats, axis) (numpy's repeat, the public ``repeat_interleave``; axis
    None flattens); dx = sum of g over each element's copies"""

    name, onnx, saves_inputs = "repeat", None, False  # exported as Gather with constant indices

    def forward(self, x, repeats, axis):
        self.in_shape = x.shape
        return np.repeat(x, repeats, axis=axis)

    def backward(self, g):
        repeats, axis = self.attrs["repeats"], self.attrs["axis"]
        n = self.in_shape[axis] if axis is not None else math.prod(self.in_shape)
        axis = axis or 0
        if isinstance(repeats, int):
            shape = (*g.shape[:axis], n, repeats, *g.shape[axis + 1 :])
            dx = g.reshape(shape).sum(axis=axis + 1)
        else:
            counts = np.asarray(repeats, dtype=np.intp)
            dx = np.zeros((*g.shape[:axis], n, *g.shape[axis + 1 :]), g.dtype)
            keep = np.flatnonzero(counts)
            if keep.size:
                starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[keep]
                idx = [slice(None)] * g.ndim
                idx[axis] = keep
                dx[tuple(idx)] = np.add.reduceat(g, starts, axis=axis)
        return dx.reshape(self.in_shape)


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
        g = g.reshape([v for pair in zip(reps, shape, strict=False) for v in pair])
        return g.sum(axis=tuple(range(0, 2 * d, 2))).reshape(self.in_shape)


# -- functional API -------------------------------------------------------------------------


def _joined(tensors, opname: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not len(tensors):
        raise BpcliError("needs a non-empty list of tensors", opname)
    ts = [lift(t) for t in tensors]
    dt = result_dtype(*[t.data for t in ts])  # torch.cat promotes as the arithmetic does
    return [t if t.dtype == dt else astype(t, dt) for t in ts]


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
            raise BpcliError(
                f"sizes {list(sizes)} do not add up to axis {ax} of shape {x.shape}", "split"
            )
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
    for (b, a), n in zip(pads, x.shape, strict=False):
        if mode != "constant" and (b < 0 or a < 0 or (n == 0 and (a or b))):
            raise BpcliError(
                f"{mode} padding {pad} must be non-negative on a non-empty axis (shape {x.shape})",
                "pad",
            )
        if (mode == "reflect" and (b >= n or a >= n)) or (mode == "circular" and (b > n or a > n)):
            raise BpcliError(f"{mode} padding {pad} is too large for shape {x.shape}", "pad")
        if n + b + a < 0:
            raise BpcliError(f"padding {pad} leaves a negative size for shape {x.shape}", "pad")
    return Pad.apply(x, pads=tuple(pads), mode=mode, value=float(value))


def repeat_interleave(x, repeats, dim: int | None = None, *, axis=None) -> Tensor:
    """torch.repeat_interleave (numpy's repeat): repeat each element; no dim flattens first."""
    x = lift(x)
    axis = dim if dim is not None else axis
    ax = norm_axis(axis, x.ndim, "repeat_interleave") if axis is not None else None
    n = x.shape[ax] if ax is not None else x.data.size
    if isinstance(repeats, Tensor | np.ndarray) and np.ndim(repeats) == 0:
        repeats = int(np.asarray(repeats))
    if not isinstance(repeats, int | np.integer):
        reps = tuple(int(r) for r in np.asarray(repeats).ravel())
        if len(reps) != 1:
            if len(reps) != n or any(r < 0 for r in reps):
                raise BpcliError(
                    f"{len(reps)} repeat counts for {n} elements along dim {axis} "
                    f"of shape {x.shape}",
                    "repeat_interleave",
                )
            return Repeat.apply(x, repeats=reps, axis=ax)
        repeats = reps[0]
    if repeats < 0:
        raise BpcliError(f"repeats must be >= 0, got {repeats}", "repeat_interleave")
    return Repeat.apply(x, repeats=int(repeats), axis=ax)


def repeat(x, *sizes) -> Tensor:
    """torch's ``Tensor.repeat``: tile the whole tensor ``sizes[i]`` times along each dim
    (new leading dims when there are more sizes than dims); numpy's element repeat is
    ``repeat_interleave``."""
    x = lift(x)
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sizes):
        raise BpcliError(f"repeat sizes must be ints, got {sizes!r}", "repeat")
    if len(sizes) < x.ndim:
        raise BpcliError(
            f"{len(sizes)} repeat sizes for a tensor of shape {x.shape}: give one per dim "
            "(for numpy's element repeat use repeat_interleave)",
            "repeat",
        )
    return tile(x, sizes)


def tile(x, reps) -> Tensor:
    """numpy's tile (torch.tile): repeat the whole tensor ``reps[i]`` times along each axis."""
    x = lift(x)
    reps = (int(reps),) if isinstance(reps, int | np.integer) else tuple(int(r) for r in reps)
    if any(r < 0 for r in reps):
        raise BpcliError(f"reps must be >= 0, got {reps}", "tile")
    return Tile.apply(x, reps=reps)
