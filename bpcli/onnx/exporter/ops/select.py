"""ONNX emitters of the reductions, order statistics, selections and scatters of issue 11:
prod (ReduceProd), sort (TopK over the whole dim), nonzero (NonZero, transposed to torch's
layout), scatter/scatter_add/scatter_reduce (ScatterElements) and one_hot (OneHot).

The others (median, mode, kthvalue, cummax, logcumsumexp, masked_scatter, index_put with
repeated rows, ...) have no ONNX operator of the same meaning: exporting them is an error that
names them, as for every op without an emitter.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported

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
