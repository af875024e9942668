"""ONNX emitters of the reductions, order statistics, selections and scatters of issue 11:
prod (ReduceProd), sort (TopK over the whole dim), nonzero (NonZero, transposed to torch's
layout), scatter/scatter_add/scatter_reduce (ScatterElements), one_hot (OneHot), masked_select
(NonZero + GatherND) and searchsorted/bucketize (a count of the smaller boundaries, M per
value: the boundary lists these are used with are short).

Order statistics, running extremes and the other reductions are in ``order.py``,
``scan_more.py`` and ``reduce_more.py``; index_put and masked_scatter in ``scatter_more.py``.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import emitter, same_type, unsupported

BOOL, INT64 = onnx_dtype(np.bool_), onnx_dtype(np.int64)

# ScatterElements' reduction attribute and the opset that first has it
SCATTER = {"none": ("none", 11), "sum": ("add", 16), "prod": ("mul", 16), "amax": ("max", 18),
           "amin": ("min", 18)}  # fmt: skip


@emitter("prod")
def _prod(ctx, rec, ins):
    axes = rec.attrs["axes"]
    if not axes:  # a 0-d input: nothing to reduce
        return ctx.node("Identity", [ins[0]])
    return ctx.reduce("ReduceProd", ins[0], axes, rec.attrs["keepdims"])


@emitter("sort")
def _sort(ctx, rec, ins):
    axis = rec.attrs["axis"]
    # k = the size of the dim, read at run time (the dim may be the dynamic batch)
    k = ctx.node("Gather", [ctx.node("Shape", [ins[0]]), ctx.ints([axis])], axis=0)
    # NOTE: TopK keeps the lower index first among equal values, as the engine's stable sort
    return ctx.node("TopK", [ins[0], k], n_out=2, axis=axis,
                    largest=int(rec.attrs["descending"]), sorted=1)  # fmt: skip


@emitter("nonzero")
def _nonzero(ctx, rec, ins):
    return ctx.node("Transpose", [ctx.node("NonZero", [ins[0]])], perm=[1, 0])


@emitter("scatter_reduce")
def _scatter_reduce(ctx, rec, ins):
    a = rec.attrs
    reduce = a["reduce"]
    if reduce not in SCATTER or not a["include_self"]:
        unsupported(rec, f"scatter_reduce({reduce!r}, include_self={a['include_self']}) has no "
                         "ONNX ScatterElements reduction")  # fmt: skip
    kind, since = SCATTER[reduce]
    if ctx.opset < since:
        unsupported(rec, f"ScatterElements with reduction {kind!r} needs opset {since} or "
                         f"newer, not {ctx.opset}")  # fmt: skip
    src, ishape, sshape = ins[2], rec.inputs[1].shape, rec.inputs[2].shape
    if tuple(ishape) != tuple(sshape):  # torch reads only the index's extent of src
        src = ctx.node("Slice", [src, ctx.ints([0] * len(ishape)), ctx.ints(ishape),
                                 ctx.ints(range(len(ishape)))])  # fmt: skip
    return ctx.node("ScatterElements", [ins[0], ins[1], src], axis=a["axis"],
                    reduction=None if kind == "none" else kind)  # fmt: skip


@emitter("one_hot")
def _one_hot(ctx, rec, ins):
    depth = ctx.const(np.array([rec.attrs["num_classes"]], np.int64), "depth")
    values = ctx.const(np.array([0, 1], np.int64), "off_on")
    return ctx.node("OneHot", [ins[0], depth, values], axis=-1)


# -- masked_select, searchsorted, bucketize (engine/ops/select.py) ----------------------------


@emitter("masked_select")
def _masked_select(ctx, rec, ins):
    x, mask = ins[0], ins[1]
    if rec.inputs[1].dtype != np.bool_:
        mask = ctx.node("Cast", [mask], to=BOOL)
    # Where(mask, x, x) is x broadcast against the mask; the mask then takes that shape
    xb = ctx.node("Where", [mask, x, x])
    mb = ctx.node("Expand", [mask, ctx.node("Shape", [xb])])
    at = ctx.node("Transpose", [ctx.node("NonZero", [mb])], perm=[1, 0])
    return ctx.node("GatherND", [xb, at])


def _count_below(ctx, rec, seq: str, values: str, seq_i: int, right: bool) -> str:
    """For each value, how many entries of its row of ``seq`` are < it (<= with ``right``):
    the insertion point of a sorted row, as numpy's and torch's searchsorted."""
    if rec.inputs[seq_i].ndim == 1:
        v, s = ctx.unsqueeze(values, [-1]), seq  # (..., 1) against (M,)
    else:
        v, s = ctx.unsqueeze(values, [-1]), ctx.unsqueeze(seq, [-2])  # (..., K, 1), (..., 1, M)
    below = ctx.node("LessOrEqual" if right else "Less", [s, v])
    return ctx.reduce("ReduceSum", ctx.node("Cast", [below], to=INT64), [-1], False)


def _index_type(ctx, y: str, out_int32: bool) -> str:
    return ctx.node("Cast", [y], to=onnx_dtype(np.int32)) if out_int32 else y


@emitter("searchsorted")
def _searchsorted(ctx, rec, ins):
    a = rec.attrs
    if len(ins) > 2:
        unsupported(rec, "searchsorted with a sorter has no ONNX form here; sort the sequence "
                         "before the call")  # fmt: skip
    seq, values = same_type(ctx, rec, ins)
    y = _count_below(ctx, rec, seq, values, 0, a["side"] == "right")
    return _index_type(ctx, y, a["out_int32"])


@emitter("bucketize")
def _bucketize(ctx, rec, ins):
    a = rec.attrs
    x, bounds = same_type(ctx, rec, ins)
    return _index_type(ctx, _count_below(ctx, rec, bounds, x, 1, a["right"]), a["out_int32"])
