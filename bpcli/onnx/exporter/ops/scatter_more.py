"""ONNX emitters of index_put and masked_scatter (``engine/ops/scatter_more.py``), both as
ScatterND: index_put's index tensors broadcast and stacked into the (..., k) coordinates
ScatterND reads (negative indices wrapped first, a bool mask as its NonZero coordinates),
``accumulate=True`` as ScatterND's ``add`` reduction (opset 16); masked_scatter writes the
first ``count(mask)`` source elements at the mask's coordinates in row-major order.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.dtypes import result_dtype
from bpcli.onnx.exporter.context import INT64_MAX, onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported
from bpcli.onnx.exporter.ops.shape_more import dim_size

BOOL, INT64 = onnx_dtype(np.bool_), onnx_dtype(np.int64)


def _coordinates(ctx, rec, ins) -> str:
    """The (..., k) int64 ScatterND coordinates of index_put's index tensors ``ins[2:]``."""
    idx_t = rec.inputs[2:]
    if any(t.dtype == np.bool_ for t in idx_t):
        if len(idx_t) != 1:
            unsupported(rec, "index_put with a bool mask beside other indices has no ONNX form "
                             "here; give integer indices")  # fmt: skip
        return ctx.node("Transpose", [ctx.node("NonZero", [ins[2]])], perm=[1, 0])
    if any(ctx.varies(rec, i) for i in range(2, len(ins))):
        unsupported(rec, "index_put with indices that follow the batch size has no ONNX form "
                         "here; export with dynamic_batch=False")  # fmt: skip
    shape = np.broadcast_shapes(*(t.shape for t in idx_t))
    cols = []
    for d, (name, t) in enumerate(zip(ins[2:], idx_t, strict=True)):
        i = name if t.dtype == np.int64 else ctx.node("Cast", [name], to=INT64)
        size = dim_size(ctx, rec, ins[0], d)
        neg = ctx.node("Cast", [ctx.node("Less", [i, ctx.ints([0])])], to=INT64)
        i = ctx.node("Add", [i, ctx.node("Mul", [neg, size])])  # torch's -1 is the last
        cols.append(ctx.unsqueeze(ctx.node("Expand", [i, ctx.ints(shape)]), [len(shape)]))
    return cols[0] if len(cols) == 1 else ctx.node("Concat", cols, axis=-1)


@emitter("index_put")
def _index_put(ctx, rec, ins):
    x, values = _promoted(ctx, rec, ins, (0, 1))
    at = _coordinates(ctx, rec, ins)
    # the updates ScatterND wants: coordinates' leading shape + the un-indexed trailing dims
    k = ctx.node("Slice", [ctx.node("Shape", [at]), ctx.ints([-1]), ctx.ints([INT64_MAX])])
    lead = ctx.node("Slice", [ctx.node("Shape", [at]), ctx.ints([0]), ctx.ints([-1])])
    tail = ctx.node("Slice", [ctx.node("Shape", [x]), k, ctx.ints([INT64_MAX])])
    updates = ctx.node("Expand", [values, ctx.node("Concat", [lead, tail], axis=0)])
    if rec.attrs["accumulate"]:
        if ctx.opset < 16:
            unsupported(rec, f"index_put(accumulate=True) is ScatterND's add reduction, which "
                             f"needs opset 16 or newer, not {ctx.opset}")  # fmt: skip
        return ctx.node("ScatterND", [x, at, updates], reduction="add")
    return ctx.node("ScatterND", [x, at, updates])


def _promoted(ctx, rec, ins, which) -> list[str]:
    """Inputs ``which`` cast to the dtype torch's promotion gives them together."""
    ts = [rec.inputs[i] for i in which]
    dt = result_dtype(*ts)
    return [ins[i] if t.dtype == dt else ctx.node("Cast", [ins[i]], to=onnx_dtype(dt))
            for i, t in zip(which, ts, strict=True)]  # fmt: skip


@emitter("masked_scatter")
def _masked_scatter(ctx, rec, ins):
    mask = ins[1] if rec.inputs[1].dtype == np.bool_ else ctx.node("Cast", [ins[1]], to=BOOL)
    x, source = _promoted(ctx, rec, ins, (0, 2))
    mb = ctx.node("Expand", [mask, ctx.node("Shape", [x])])
    at = ctx.node("Transpose", [ctx.node("NonZero", [mb])], perm=[1, 0])
    count = ctx.node("Slice", [ctx.node("Shape", [at]), ctx.ints([0]), ctx.ints([1])])
    src = ctx.node("Slice", [ctx.reshape(source, [-1]), ctx.ints([0]), count])
    return ctx.node("ScatterND", [x, at, src])
