"""More shape ops, as torch has them: flip, roll, diagonals, triangles, windows, and the
composites built from views (view, narrow, movedim, rot90, meshgrid, broadcast_tensors, ...).

The primitives here (flip, roll, diagonal, diag_embed, tril, triu, unfold_dim) work on numpy
arrays; the rest are compositions of existing ops, so their gradient comes for free. Permutes
are made with the ``transpose`` engine op directly (a permutation), so they do not depend on
the public ``transpose`` function's convention.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops._axis import axes_tuple, norm_axis
from bpcli.engine.ops.index import getitem
from bpcli.engine.ops.join import Pad
from bpcli.engine.ops.join import pad as _pad
from bpcli.engine.ops.shape import Transpose, expand, reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "broadcast_tensors", "broadcast_to", "diag", "diag_embed", "diagonal", "expand_as", "flip",
    "fliplr", "flipud", "meshgrid", "moveaxis", "movedim", "narrow", "pad", "reshape_as", "roll",
    "rot90", "tril", "triu", "unflatten", "view", "view_as",
]  # fmt: skip


class Flip(Op):
    """y = x reversed along dims; dx = g reversed along dims"""

    name, onnx, saves_inputs = "flip", "Slice", False

    def forward(self, x, dims):
        return np.flip(x, dims)

    def backward(self, g):
        return np.flip(g, self.attrs["dims"])


class Roll(Op):
    """y = roll(x, shifts, dims); dx = roll(g, -shifts, dims)"""

    name, onnx, saves_inputs = "roll", "Slice", False

    def forward(self, x, shifts, dims):
        return np.roll(x, shifts, dims)

    def backward(self, g):
        return np.roll(g, tuple(-s for s in self.attrs["shifts"]), self.attrs["dims"])


def _diag_index(n1: int, n2: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the ``offset`` diagonal of an n1 x n2 matrix."""
    length = max(0, min(n1 + min(offset, 0), n2 - max(offset, 0)))
    i = np.arange(length) + max(-offset, 0)
    return i, i + offset


class Diagonal(Op):
    """y = x[..., i, i + offset] over (dim1, dim2), appended last; dx = g scattered back"""

    name, onnx, saves_inputs = "diagonal", None, False

    def forward(self, x, offset, dim1, dim2):
        self.in_shape = x.shape
        return np.diagonal(x, offset, dim1, dim2)  # numpy also puts the diagonal last

    def backward(self, g):
        offset, d1, d2 = self.attrs["offset"], self.attrs["dim1"], self.attrs["dim2"]
        dx = np.zeros(self.in_shape, g.dtype)
        moved = np.moveaxis(dx, (d1, d2), (-2, -1))  # a view: writing it fills dx
        i, j = _diag_index(moved.shape[-2], moved.shape[-1], offset)
        moved[..., i, j] = g
        return dx


class DiagEmbed(Op):
    """y[..., i, i + offset] = x over (dim1, dim2) of a zero tensor; dx = diagonal of g"""

    name, onnx, saves_inputs = "diag_embed", None, False

    def forward(self, x, offset, dim1, dim2):
        n = x.shape[-1] + abs(offset)
        rest = list(x.shape[:-1])
        shape = [0] * (x.ndim + 1)
        for d, s in zip((dim1, dim2), (n, n)):
            shape[d] = s
        for k in range(len(shape)):
            if k not in (dim1, dim2):
                shape[k] = rest.pop(0)
        y = np.zeros(shape, x.dtype)
        moved = np.moveaxis(y, (dim1, dim2), (-2, -1))
        i, j = _diag_index(n, n, offset)
        moved[..., i, j] = x
        return y

    def backward(self, g):
        a = self.attrs
        return np.diagonal(g, a["offset"], a["dim1"], a["dim2"])


class Tril(Op):
    """y = x with the elements above diagonal k zeroed; dx = tril(g, k)"""

    name, onnx, saves_inputs = "tril", "Trilu", False

    def forward(self, x, diagonal):
        return np.tril(x, diagonal)

    def backward(self, g):
        return np.tril(g, self.attrs["diagonal"])


class Triu(Op):
    """y = x with the elements below diagonal k zeroed; dx = triu(g, k)"""

    name, onnx, saves_inputs = "triu", "Trilu", False

    def forward(self, x, diagonal):
        return np.triu(x, diagonal)

    def backward(self, g):
        return np.triu(g, self.attrs["diagonal"])


class UnfoldDim(Op):
    """y[..., w, ..., k] = x[..., w * step + k, ...] (Tensor.unfold); dx = windows summed back"""

    name, onnx, saves_inputs = "unfold_dim", None, False

    def forward(self, x, dim, size, step):
        self.in_shape = x.shape
        win = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
        return np.ascontiguousarray(win[(slice(None),) * dim + (slice(None, None, step),)])

    def backward(self, g):
        dim, size, step = self.attrs["dim"], self.attrs["size"], self.attrs["step"]
        dx = np.zeros(self.in_shape, g.dtype)
        gm = np.moveaxis(g, dim, 0)  # (windows, ..., size)
        dm = np.moveaxis(dx, dim, 0)
        for k in range(size):  # size adds, each over every window at once
            idx = np.arange(gm.shape[0]) * step + k
            np.add.at(dm, idx, gm[..., k])
        return dx


# -- functional API -------------------------------------------------------------------------


def _permute(x: Tensor, perm) -> Tensor:
    perm = tuple(perm)
    return x if perm == tuple(range(x.ndim)) else Transpose.apply(x, axes=perm)


def view(x, *shape) -> Tensor:
    """torch's view: ``x`` with a new shape, sharing its memory (``view(dtype)`` reinterprets).

    Where the data's layout cannot take the new shape without a copy (a transposed tensor
    flattened, ...), this is torch's error: a view must share memory with ``x``.
    """
    x = lift(x)
    if len(shape) == 1 and not isinstance(shape[0], int | np.integer | tuple | list):
        return _view_dtype(x, shape[0])
    y = reshape(x, *shape)
    if y is not x and not np.shares_memory(y._data, x._data) and x.numel():
        raise BpcliError(
            f"view size {tuple(y.shape)} is not compatible with input tensor's size and stride "
            "(at least one dimension spans across two contiguous subspaces). Use .reshape(...) "
            "instead.",
            "view",
        )
    return y


def _view_dtype(x: Tensor, dtype) -> Tensor:
    from bpcli.engine.convert import const

    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise BpcliError(f"view takes a shape or a dtype, got {dtype!r}", "view") from None
    if x._requires_grad and dtype.itemsize != x.dtype.itemsize:
        raise BpcliError("view(dtype) of another element size is not differentiable", "view")
    try:
        return const(x._data.view(dtype))
    except ValueError as e:
        raise BpcliError(str(e), "view") from None


def view_as(x, other) -> Tensor:
    return view(x, lift(other).shape)


def reshape_as(x, other) -> Tensor:
    return reshape(x, lift(other).shape)


def expand_as(x, other) -> Tensor:
    return expand(x, lift(other).shape)


def broadcast_to(x, shape) -> Tensor:
    """torch.broadcast_to: ``expand`` to ``shape`` (-1 keeps a dim)."""
    return expand(x, tuple(shape))


def broadcast_tensors(*tensors) -> tuple[Tensor, ...]:
    """The tensors expanded to their common broadcast shape."""
    tensors = [lift(t) for t in shape_args_tensors(tensors)]
    try:
        shape = np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise BpcliError(f"shapes {shapes} do not broadcast", "broadcast_tensors") from None
    return tuple(expand(t, shape) for t in tensors)


def shape_args_tensors(tensors):
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        return tuple(tensors[0])
    return tuple(tensors)


def flip(x, dims, *more) -> Tensor:
    """Reverse the order of elements along ``dims`` (an int or a sequence)."""
    x = lift(x)
    dims = (dims, *more) if more else dims
    dims = axes_tuple(dims, max(x.ndim, 1), "flip") if x.ndim else ()
    if not dims:
        return x
    return Flip.apply(x, dims=dims)


def fliplr(x) -> Tensor:
    x = lift(x)
    if x.ndim < 2:
        raise BpcliError(f"fliplr needs a tensor of at least 2 dims, got {x.ndim}", "fliplr")
    return flip(x, (1,))


def flipud(x) -> Tensor:
    x = lift(x)
    if x.ndim < 1:
        raise BpcliError("flipud needs a tensor of at least 1 dim", "flipud")
    return flip(x, (0,))


def roll(x, shifts, dims=None) -> Tensor:
    """Shift elements cyclically along ``dims``; with no dims, over the flattened tensor."""
    x = lift(x)
    shifts = (shifts,) if isinstance(shifts, int | np.integer) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise BpcliError(f"{len(shifts)} shifts need as many dims", "roll")
        return reshape(roll(reshape(x, -1), shifts, 0), x.shape)
    dims = axes_tuple(dims, max(x.ndim, 1), "roll") if isinstance(dims, int) or dims else ()
    if len(shifts) != len(dims):
        raise BpcliError(f"shifts {shifts} and dims {dims} differ in length", "roll")
    if x.numel() == 0:
        return x
    return Roll.apply(x, shifts=tuple(int(s) for s in shifts), dims=dims)


def rot90(x, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane of ``dims``, from dims[0] towards dims[1]."""
    x = lift(x)
    if len(dims) != 2:
        raise BpcliError(f"expected 2 dims, got {len(dims)}", "rot90")
    if x.ndim < 2:
        raise BpcliError(f"expected a tensor of at least 2 dims, got {x.ndim}", "rot90")
    d0, d1 = (norm_axis(d, x.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise BpcliError(f"dims {tuple(dims)} must be different", "rot90")
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    k = int(k) % 4
    if k == 1:
        return _permute(flip(x, d1), perm)
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return _permute(flip(x, d0), perm)
    return x


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1)."""
    x = lift(x)
    d = norm_axis(dim, x.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise BpcliError("sizes must be non-empty", "unflatten")
    n = x.shape[d]
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or (-1 not in sizes and known != n) or (
        -1 in sizes and (known == 0 or n % known)
    ):
        raise BpcliError(f"sizes {sizes} do not multiply to the size {n} of dim {dim}", "unflatten")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, (*x.shape[:d], *sizes, *x.shape[d + 1 :]))


def unfold_dim(x, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: every window of ``size`` along ``dimension``, ``step`` apart, as a new
    last dim (torch's method; ``F.unfold`` is im2col)."""
    x = lift(x)
    if x.ndim == 0:
        if size > 1 or dimension not in (0, -1):
            raise BpcliError(f"size {size} is larger than the 0-d tensor's 1", "unfold")
        return reshape(x, (1,))
    d = norm_axis(dimension, x.ndim, "unfold")
    if step <= 0:
        raise BpcliError(f"step is {step} but must be > 0", "unfold")
    if not 0 <= size <= x.shape[d]:
        raise BpcliError(
            f"maximum size for tensor at dimension {d} is {x.shape[d]} but size is {size}",
            "unfold",
        )
    return UnfoldDim.apply(x, dim=d, size=int(size), step=int(step))


def narrow(x, dim: int, start, length: int) -> Tensor:
    """The slice ``start : start + length`` of dim ``dim`` (a view)."""
    x = lift(x)
    d = norm_axis(dim, x.ndim, "narrow")
    n = x.shape[d]
    start = int(start.item() if isinstance(start, Tensor) else start)
    if not -n <= start <= n:
        raise BpcliError(f"start ({start}) is out of range for dim {dim} of size {n}", "narrow")
    start += n if start < 0 else 0
    if length < 0 or start + length > n:
        raise BpcliError(f"start ({start}) + length ({length}) exceeds dimension size ({n})", "narrow")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def movedim(x, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or sequences), the rest in order."""
    x = lift(x)
    src = axes_tuple(source, x.ndim, "movedim")
    dst = axes_tuple(destination, x.ndim, "movedim")
    if len(src) != len(dst):
        raise BpcliError(
            f"source {source} and destination {destination} differ in length", "movedim"
        )
    rest = iter(d for d in range(x.ndim) if d not in src)
    where = dict(zip(dst, src))
    return _permute(x, [where[i] if i in where else next(rest) for i in range(x.ndim)])


moveaxis = movedim


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset`` diagonal of the (dim1, dim2) planes, as a new last dim."""
    x = lift(x)
    a, b = norm_axis(dim1, x.ndim, "diagonal"), norm_axis(dim2, x.ndim, "diagonal")
    if a == b:
        raise BpcliError(f"diagonal dimensions cannot be identical {dim1}, {dim2}", "diagonal")
    return Diagonal.apply(x, offset=int(offset), dim1=a, dim2=b)


def diag_embed(x, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """A tensor whose (dim1, dim2) planes hold the last dim of ``x`` on diagonal ``offset``."""
    x = lift(x)
    if x.ndim == 0:
        raise BpcliError("diag_embed needs a tensor of at least 1 dim", "diag_embed")
    a, b = norm_axis(dim1, x.ndim + 1, "diag_embed"), norm_axis(dim2, x.ndim + 1, "diag_embed")
    if a == b:
        raise BpcliError(f"diagonal dimensions cannot be identical {dim1}, {dim2}", "diag_embed")
    return DiagEmbed.apply(x, offset=int(offset), dim1=a, dim2=b)


def diag(x, diagonal: int = 0) -> Tensor:
    """1-D: a square matrix with ``x`` on diagonal ``diagonal``; 2-D: that diagonal of ``x``."""
    x = lift(x)
    if x.ndim == 1:
        return diag_embed(x, diagonal, 0, 1)
    if x.ndim == 2:
        return Diagonal.apply(x, offset=int(diagonal), dim1=0, dim2=1)
    raise BpcliError(f"diag takes a 1-D or 2-D tensor, got {x.ndim}-D", "diag")


def _triangle(op, x, diagonal, opname):
    x = lift(x)
    if x.ndim < 2:
        raise BpcliError(f"{opname} needs a tensor of at least 2 dims, got {x.ndim}", opname)
    return op.apply(x, diagonal=int(diagonal))


def tril(x, diagonal: int = 0) -> Tensor:
    """The lower triangle (on and below diagonal ``diagonal``) of the last two dims."""
    return _triangle(Tril, x, diagonal, "tril")


def triu(x, diagonal: int = 0) -> Tensor:
    """The upper triangle (on and above diagonal ``diagonal``) of the last two dims."""
    return _triangle(Triu, x, diagonal, "triu")


def meshgrid(*tensors, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors; ``indexing='xy'`` swaps the first two dims."""
    tensors = [lift(t) for t in shape_args_tensors(tensors)]
    if indexing not in ("ij", "xy"):
        raise BpcliError(f"indexing must be 'ij' or 'xy', got {indexing!r}", "meshgrid")
    if not tensors:
        raise BpcliError("expects a non-empty list of tensors", "meshgrid")
    if any(t.ndim > 1 for t in tensors):
        raise BpcliError("expects 0-d or 1-d tensors", "meshgrid")
    sizes = [max(t.numel(), 0) if t.ndim else 1 for t in tensors]
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        order[0], order[1] = 1, 0
    shape = tuple(sizes[i] for i in order)
    out = []
    for k, t in enumerate(tensors):
        pos = order.index(k)
        one = [1] * len(shape)
        one[pos] = sizes[k]
        out.append(expand(reshape(t, tuple(one)), shape))
    return tuple(out)


def contiguous(x) -> Tensor:
    """``x`` itself when its data is C-contiguous, else a contiguous copy (as torch)."""
    from bpcli.engine.ops.elementwise import clone

    x = lift(x)
    if x._data.flags.c_contiguous:
        return x
    return clone(x)  # ndarray.copy() is row-major



def pad(x, pad, mode: str = "constant", value=None) -> Tensor:
    """torch.nn.functional.pad; ``pad`` = (last_before, last_after, prev_before, ...).

    A negative pad crops. As torch does, reflect and replicate pad the whole tensor and then
    crop, while circular crops first and wraps what is left (each pad at most that size).
    """
    if mode != "constant" and value not in (None, 0):
        raise BpcliError(f"padding mode {mode!r} does not take a value argument", "pad")
    x = lift(x)
    pads = tuple(int(p) for p in pad)
    if mode == "constant" or all(p >= 0 for p in pads) or len(pads) % 2 or len(pads) > 2 * x.ndim:
        return _pad(x, pads, mode=mode, value=0.0 if value is None else value)
    k = len(pads) // 2
    per_dim = [(0, 0)] * (x.ndim - k) + [(pads[2 * i], pads[2 * i + 1]) for i in range(k)][::-1]
    for (b, a), n in zip(per_dim, x.shape):
        left = n + min(b, 0) + min(a, 0)  # what circular wraps (torch fails beyond it)
        if left < 0 or max(b, a) > (left if mode == "circular" else n) or (
            mode == "reflect" and max(b, a) >= n
        ):
            raise BpcliError(f"{mode} padding {pads} is too large for shape {x.shape}", "pad")
    if mode in ("reflect", "replicate"):
        return Pad.apply(x, pads=tuple(per_dim), mode=mode, value=0.0)
    if mode != "circular":
        raise BpcliError(f"unknown mode {mode!r} (constant, reflect, replicate, circular)", "pad")
    crop = tuple(slice(max(-b, 0), n + min(a, 0)) for (b, a), n in zip(per_dim, x.shape))
    y = getitem(x, crop)
    for d, (b, a) in enumerate(per_dim):
        if b > 0 or a > 0:
            n = y.shape[d]
            idx = np.arange(-max(b, 0), n + max(a, 0)) % max(n, 1)
            y = getitem(y, (slice(None),) * d + (idx,))
    return y
