"""ONNX emitters of the order statistics of ``engine/ops/order.py``: kthvalue and median
(TopK of the smallest k, then the k-th; TopK keeps the lower index first among equal values,
as the engine's stable sort), the all-elements median, and mode (pairwise equality counts,
n^2 per row: the smallest of the most frequent values, at its last occurrence).

Nan follows the engine and torch: median is nan, at the first nan's index, when a row holds
one. kthvalue and mode of rows holding nan are not matched (TopK and Equal order nan their
own way); sort is exported with the same caveat.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter
from bpcli.onnx.exporter.ops.scan_more import _extreme
from bpcli.onnx.exporter.ops.shape_more import dim_size

INT64 = onnx_dtype(np.int64)


def _kth_smallest(ctx, x: str, k: str, axis: int, keepdims: bool) -> list[str]:
    """(value, index) of the k-th smallest along ``axis``; ``k`` a [1] int64 tensor."""
    vals, idx = ctx.node("TopK", [x, k], n_out=2, axis=axis, largest=0, sorted=1)
    last = ctx.node("Sub", [k, ctx.ints([1])])
    out = [ctx.node("Gather", [t, last], axis=axis) for t in (vals, idx)]
    return out if keepdims else [ctx.squeeze(t, [axis]) for t in out]


@emitter("kthvalue")
def _kthvalue(ctx, rec, ins):
    a = rec.attrs
    if rec.inputs[0].ndim == 0:
        return [ctx.node("Identity", [ins[0]]), ctx.const(np.zeros((), np.int64))]
    return _kth_smallest(ctx, ins[0], ctx.ints([a["k"]]), a["axis"], a["keepdims"])


def _lower_median_k(ctx, n: str) -> str:
    """k = (n - 1) // 2 + 1, the rank of the lower median."""
    half = ctx.node("Div", [ctx.node("Sub", [n, ctx.ints([1])]), ctx.ints([2])])
    return ctx.node("Add", [half, ctx.ints([1])])


def _nan_first(ctx, rec, x: str, axis: int, keepdims: bool, vals: str, idx: str):
    """Median's nan rule: a row holding nan gives nan at its first nan."""
    nan = ctx.node("IsNaN", [x])
    as_int = ctx.node("Cast", [nan], to=INT64)
    seen = ctx.node("Cast", [ctx.reduce("ReduceMax", as_int, [axis], keepdims)],
                    to=onnx_dtype(np.bool_))  # fmt: skip
    first = ctx.node("ArgMax", [as_int], axis=axis, keepdims=int(keepdims))
    return [ctx.node("Where", [seen, ctx.scalar(np.nan, dtype_of(rec)), vals]),
            ctx.node("Where", [seen, first, idx])]  # fmt: skip


@emitter("median")
def _median(ctx, rec, ins):
    a = rec.attrs
    if rec.inputs[0].ndim == 0:
        return [ctx.node("Identity", [ins[0]]), ctx.const(np.zeros((), np.int64))]
    axis, keep = a["axis"], a.get("keepdims", True)
    k = _lower_median_k(ctx, dim_size(ctx, rec, ins[0], axis))
    vals, idx = _kth_smallest(ctx, ins[0], k, axis, keep)
    if dtype_of(rec).kind != "f":
        return [vals, idx]
    return _nan_first(ctx, rec, ins[0], axis, keep, vals, idx)


@emitter("median_all")
def _median_all(ctx, rec, ins):
    flat = ctx.reshape(ins[0], [-1])
    n = ctx.node("Shape", [flat])
    vals, _ = _kth_smallest(ctx, flat, _lower_median_k(ctx, n), 0, False)
    if dtype_of(rec).kind != "f":
        return vals
    nan = ctx.reduce("ReduceMax", ctx.node("Cast", [ctx.node("IsNaN", [flat])], to=INT64), [0],
                     False)  # fmt: skip
    seen = ctx.node("Cast", [nan], to=onnx_dtype(np.bool_))
    return ctx.node("Where", [seen, ctx.scalar(np.nan, dtype_of(rec)), vals])


@emitter("mode")
def _mode(ctx, rec, ins):
    a, dt = rec.attrs, dtype_of(rec)
    if rec.inputs[0].ndim == 0:
        return [ctx.node("Identity", [ins[0]]), ctx.const(np.zeros((), np.int64))]
    axis, keep = a["axis"], a.get("keepdims", True)
    x = ins[0]
    # counts[..., i] = how often x_i occurs along the dim
    same = ctx.node("Equal", [ctx.unsqueeze(x, [axis + 1]), ctx.unsqueeze(x, [axis])])
    counts = ctx.reduce("ReduceSum", ctx.node("Cast", [same], to=INT64), [axis + 1], False)
    top = ctx.node("Equal", [counts, ctx.reduce("ReduceMax", counts, [axis], True)])
    big = ctx.scalar(_extreme(dt, low=False), dt)
    value = ctx.reduce("ReduceMin", ctx.node("Where", [top, x, big]), [axis], True)
    hit = ctx.node("Cast", [ctx.node("Equal", [x, value])], to=INT64)
    idx = ctx.node("ArgMax", [hit], axis=axis, keepdims=1, select_last_index=1)
    return [value, idx] if keep else [ctx.squeeze(value, [axis]), ctx.squeeze(idx, [axis])]
