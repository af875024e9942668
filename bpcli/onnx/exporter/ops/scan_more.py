"""ONNX emitters of cummax, cummin and logcumsumexp (``engine/ops/scan_more.py``).

ONNX has no running max or log-sum-exp, so each is a reduction over a lower-triangular view:
for position i along the dim, the entries j <= i of an (..., n, n) broadcast (the rest filled
with the reduction's identity) reduce to output i. That costs n^2 per row, fine for the
sequence lengths these are used on; the triangle comes from Range, so the dim may be dynamic.
The indices follow the engine's (and torch's) rule: the newest position among ties, and once
a nan is seen, the value is nan at the index of the newest nan.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter
from bpcli.onnx.exporter.ops.shape_more import dim_size

INT64 = onnx_dtype(np.int64)


def to_last(ctx, x: str, axis: int, nd: int) -> tuple[str, list[int] | None]:
    """``x`` with ``axis`` moved last, and the perm that moves it back (None: already last)."""
    if axis == nd - 1:
        return x, None
    perm = [k for k in range(nd) if k != axis] + [axis]
    back = [perm.index(k) for k in range(nd)]
    return ctx.node("Transpose", [x], perm=perm), back


def from_last(ctx, y: str, back) -> str:
    return y if back is None else ctx.node("Transpose", [y], perm=back)


def lower_triangle(ctx, n: str) -> str:
    """A bool (n, n) tensor, true where column j <= row i."""
    zero, one = ctx.const(np.array(0, np.int64)), ctx.const(np.array(1, np.int64))
    r = ctx.node("Range", [zero, ctx.squeeze(n, [0]), one])
    return ctx.node("LessOrEqual", [ctx.unsqueeze(r, [0]), ctx.unsqueeze(r, [1])])


def _extreme(dtype, low: bool):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf if low else np.inf
    if dtype == np.bool_:
        return not low
    info = np.iinfo(dtype)
    return info.min if low else info.max


def prefix_view(ctx, rec, ins, fill):
    """(the (..., n, n) prefix broadcast of input 0 along its dim, the triangle, back-perm)."""
    axis, nd = rec.attrs["axis"], max(rec.inputs[0].ndim, 1)
    x = ins[0] if rec.inputs[0].ndim else ctx.reshape(ins[0], [1])
    last, back = to_last(ctx, x, axis, nd)
    tri = lower_triangle(ctx, dim_size(ctx, rec, ins[0], axis) if rec.inputs[0].ndim
                         else ctx.ints([1]))  # fmt: skip
    rows = ctx.unsqueeze(last, [nd - 1])  # (..., 1, n) broadcasts against the (n, n) triangle
    return ctx.node("Where", [tri, rows, ctx.scalar(fill, dtype_of(rec))]), tri, back


def _finish(ctx, rec, y: str, back) -> str:
    y = from_last(ctx, y, back)
    return y if rec.inputs[0].ndim else ctx.reshape(y, [])


@emitter("logcumsumexp")
def _logcumsumexp(ctx, rec, ins):
    view, _, back = prefix_view(ctx, rec, ins, -np.inf)
    nd = max(rec.inputs[0].ndim, 1)
    return _finish(ctx, rec, ctx.reduce("ReduceLogSumExp", view, [nd], False), back)


@emitter("cummax", "cummin")
def _cum_extreme(ctx, rec, ins):
    is_max, dt = rec.name == "cummax", dtype_of(rec)
    nd = max(rec.inputs[0].ndim, 1)
    view, tri, back = prefix_view(ctx, rec, ins, _extreme(dt, is_max))
    if dt.kind == "f":  # nan is handled below; the plain reduction ignores it
        view = ctx.node("Where", [ctx.node("IsNaN", [view]),
                                  ctx.scalar(_extreme(dt, is_max), dt), view])  # fmt: skip
    vals = ctx.reduce("ReduceMax" if is_max else "ReduceMin", view, [nd], True)
    # the newest j <= i holding the running value
    hit = ctx.node("And", [ctx.node("Equal", [view, vals]), tri])
    idx = ctx.node("ArgMax", [ctx.node("Cast", [hit], to=INT64)], axis=nd, keepdims=0,
                   select_last_index=1)  # fmt: skip
    vals = ctx.squeeze(vals, [nd])
    if dt.kind == "f":
        nan = ctx.node("And", [ctx.node("IsNaN", [prefix_view(ctx, rec, ins, 0)[0]]), tri])
        seen = ctx.reduce("ReduceMax", ctx.node("Cast", [nan], to=INT64), [nd], False)
        seen = ctx.node("Cast", [seen], to=onnx_dtype(np.bool_))
        last_nan = ctx.node("ArgMax", [ctx.node("Cast", [nan], to=INT64)], axis=nd,
                            keepdims=0, select_last_index=1)  # fmt: skip
        vals = ctx.node("Where", [seen, ctx.scalar(np.nan, dt), vals])
        idx = ctx.node("Where", [seen, last_nan, idx])
    return [_finish(ctx, rec, vals, back), _finish(ctx, rec, idx, back)]
