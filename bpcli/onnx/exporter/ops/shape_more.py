"""ONNX emitters of the view-like ops of ``engine/ops/shape_more.py``: flip and roll (Slice,
Concat), tril/triu (Trilu from opset 14, a constant mask before), diagonal and diag_embed (a
Gather over the flattened last two dims), and Tensor.unfold (a Gather of the windows).

A dim that follows the dynamic batch is read from the graph's Shape where the op allows it
(flip, roll); the ops that gather by constant indices (diagonal, diag_embed's placement,
unfold) need that dim fixed and say so.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from bpcli.onnx.exporter.context import INT64_MAX, onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter, unsupported
from bpcli.onnx.exporter.ops.shape import INT64_MIN


def dim_size(ctx, rec, x: str, axis: int, i: int = 0) -> str:
    """A [1] int64 tensor holding the size of ``axis`` of input ``i``."""
    if axis not in ctx.varies(rec, i):
        return ctx.ints([rec.inputs[i].shape[axis]])
    return ctx.node("Gather", [ctx.node("Shape", [x]), ctx.ints([axis])], axis=0)


def fixed_dims(rec, dims, what: str, i: int = 0, ctx=None) -> None:
    """Refuse when one of ``dims`` of input ``i`` follows the dynamic batch."""
    moving = ctx.varies(rec, i) & set(dims)
    if moving:
        unsupported(rec, f"{what} along dim {min(moving)}, which follows the batch size, has no "
                         "ONNX form here; export with dynamic_batch=False")  # fmt: skip


def permutation_to(nd: int, moved: tuple[int, ...]) -> list[int]:
    """The perm that moves the last ``len(moved)`` axes of an ``nd``-D tensor to ``moved``."""
    rest = iter(range(nd - len(moved)))
    src = dict(zip(moved, range(nd - len(moved), nd), strict=True))
    return [src[k] if k in src else next(rest) for k in range(nd)]


@emitter("flip")
def _flip(ctx, rec, ins):
    dims = list(rec.attrs["dims"])
    k = len(dims)
    return ctx.node("Slice", [ins[0], ctx.ints([-1] * k), ctx.ints([INT64_MIN] * k),
                              ctx.ints(dims), ctx.ints([-1] * k)])  # fmt: skip


@emitter("roll")
def _roll(ctx, rec, ins):
    y = ins[0]
    for shift, dim in zip(rec.attrs["shifts"], rec.attrs["dims"], strict=True):
        n = dim_size(ctx, rec, ins[0], dim)
        # the last `shift mod n` entries come first: y = concat(y[n - s:], y[:n - s])
        cut = ctx.node("Sub", [n, ctx.node("Mod", [ctx.ints([shift]), n])])
        axis = ctx.ints([dim])
        tail = ctx.node("Slice", [y, cut, ctx.ints([INT64_MAX]), axis])
        head = ctx.node("Slice", [y, ctx.ints([0]), cut, axis])
        y = ctx.node("Concat", [tail, head], axis=dim)
    return y


@emitter("tril", "triu")
def _tri(ctx, rec, ins):
    k, upper = rec.attrs["diagonal"], int(rec.name == "triu")
    if ctx.opset >= 14:
        return ctx.node("Trilu", [ins[0], ctx.const(np.array(k, np.int64), "k")], upper=upper)
    nd = rec.inputs[0].ndim
    fixed_dims(rec, (nd - 2, nd - 1), rec.name, ctx=ctx)
    h, w = rec.inputs[0].shape[-2:]
    keep = (np.triu if upper else np.tril)(np.ones((h, w), np.bool_), k)
    zero = ctx.scalar(0, dtype_of(rec))
    return ctx.node("Where", [ctx.const(keep, "tri_mask"), ins[0], zero])


def _diag_index(h: int, w: int, offset: int) -> np.ndarray:
    """Flat positions (row * w + col) of the ``offset`` diagonal of an (h, w) matrix."""
    rows = np.arange(max(0, -offset), h)
    rows = rows[rows + offset < w]
    return rows * w + rows + offset


def _join_last_two(ctx, x: str, nd: int, h: int, w: int) -> str:
    """``x`` reshaped to (..., h * w): the leading dims copied, the last two joined."""
    lead = [0] * (nd - 2)  # Reshape's 0 copies the input's size (batch dims included)
    return ctx.reshape(x, [*lead, h * w])


@emitter("diagonal")
def _diagonal(ctx, rec, ins):
    a, x = rec.attrs, rec.inputs[0]
    d1, d2, nd = a["dim1"], a["dim2"], x.ndim
    fixed_dims(rec, (d1, d2), "diagonal", ctx=ctx)
    rest = [k for k in range(nd) if k not in (d1, d2)]
    moved = ctx.node("Transpose", [ins[0]], perm=[*rest, d1, d2])
    h, w = x.shape[d1], x.shape[d2]
    flat = _join_last_two(ctx, moved, nd, h, w)
    idx = ctx.const(_diag_index(h, w, a["offset"]).astype(np.int64), "diag_idx")
    return ctx.node("Gather", [flat, idx], axis=nd - 2)


@emitter("diag_embed")
def _diag_embed(ctx, rec, ins):
    a, x = rec.attrs, rec.inputs[0]
    nd, n = x.ndim, x.shape[-1]
    fixed_dims(rec, (nd - 1,), "diag_embed", ctx=ctx)
    m = n + abs(a["offset"])
    # a zero column at position n; each of the m * m outputs gathers its entry or that zero
    lead = ctx.node("Slice", [ctx.node("Shape", [ins[0]]), ctx.ints([0]), ctx.ints([-1])])
    zshape = ctx.node("Concat", [lead, ctx.ints([1])], axis=0)
    zero = ctx.node("ConstantOfShape", [zshape], value=_zero_tensor(dtype_of(rec)))
    padded = ctx.node("Concat", [ins[0], zero], axis=-1)
    idx = np.full(m * m, n, np.int64)
    idx[_diag_index(m, m, a["offset"])] = np.arange(n)
    flat = ctx.node("Gather", [padded, ctx.const(idx, "embed_idx")], axis=nd - 1)
    square = ctx.node("Reshape", [flat, ctx.node("Concat", [lead, ctx.ints([m, m])], axis=0)])
    perm = permutation_to(nd + 1, (a["dim1"], a["dim2"]))
    return square if perm == list(range(nd + 1)) else ctx.node("Transpose", [square], perm=perm)


def _zero_tensor(dtype):
    return helper.make_tensor("zero", onnx_dtype(dtype), [1], [0])


@emitter("unfold_dim")
def _unfold_dim(ctx, rec, ins):
    a, x = rec.attrs, rec.inputs[0]
    dim, size, step, nd = a["dim"], a["size"], a["step"], x.ndim
    if nd == 0:  # a 0-d tensor unfolds to one window of itself
        return ctx.reshape(ins[0], [1])
    fixed_dims(rec, (dim,), "unfold", ctx=ctx)
    starts = np.arange(0, x.shape[dim] - size + 1, step)
    idx = (starts[:, None] + np.arange(size)[None, :]).astype(np.int64)
    windows = ctx.node("Gather", [ins[0], ctx.const(idx, "win_idx")], axis=dim)
    # Gather puts (windows, size) at dim, dim + 1; torch puts size last
    perm = [k for k in range(nd + 1) if k != dim + 1] + [dim + 1]
    return windows if dim == nd - 1 else ctx.node("Transpose", [windows], perm=perm)
