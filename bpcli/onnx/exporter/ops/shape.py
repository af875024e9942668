"""ONNX emitters of the shape, join and indexing ops (added to ``elementwise.EMITTERS``).

Reshape and Expand targets that follow the batch are written with 0 (copy the input's dim),
-1 (infer) or, failing both, a shape computed from ``Shape(input)``, never the traced size.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import INT64_MAX, onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported

INT64_MIN = -(2**63)


@emitter("reshape")
def _reshape(ctx, rec, ins):
    in1, out1 = rec.inputs[0].shape, rec.attrs["shape"]
    if rec.twin is None or rec.twin.attrs["shape"] == out1:
        return ctx.reshape(ins[0], out1)
    in2, out2 = rec.twin.inputs[0].shape, rec.twin.attrs["shape"]
    target, free = list(out1), []
    for k, (a, b) in enumerate(zip(out1, out2, strict=True)):
        if a == b:
            continue
        if k < len(in1) and (in1[k], in2[k]) == (a, b):
            target[k] = 0  # ONNX Reshape: 0 copies the input's dim
        else:
            free.append(k)
    if len(free) == 1:
        target[free[0]] = -1
    elif free:
        return ctx.node("Reshape", [ins[0], ctx.dyn_shape(out1, out2, rec)])
    return ctx.reshape(ins[0], target)


@emitter("transpose")
def _transpose(ctx, rec, ins):
    return ctx.node("Transpose", [ins[0]], perm=list(rec.attrs["axes"]))


@emitter("squeeze")
def _squeeze(ctx, rec, ins):
    return ctx.squeeze(ins[0], rec.attrs["axes"])


@emitter("unsqueeze")
def _unsqueeze(ctx, rec, ins):
    return ctx.unsqueeze(ins[0], rec.attrs["axes"])


@emitter("expand")
def _expand(ctx, rec, ins):
    s1 = list(rec.attrs["shape"])
    if rec.twin is None or list(rec.twin.attrs["shape"]) == s1:
        return ctx.node("Expand", [ins[0], ctx.ints(s1)])
    s2 = list(rec.twin.attrs["shape"])
    lead = len(s1) - rec.inputs[0].ndim
    moving = ctx.varies(rec, 0)
    for k in range(len(s1)):
        if s1[k] != s2[k] and k - lead in moving:
            s1[k] = s2[k] = 1  # Expand broadcasts both ways: 1 keeps the input's dim
    return ctx.node("Expand", [ins[0], ctx.dyn_shape(s1, s2, rec)])


@emitter("concat")
def _concat(ctx, rec, ins):
    return ctx.node("Concat", list(ins), axis=rec.attrs["axis"])


@emitter("stack")
def _stack(ctx, rec, ins):
    axis = rec.attrs["axis"]
    return ctx.node("Concat", [ctx.unsqueeze(n, [axis]) for n in ins], axis=axis)


@emitter("split")
def _split(ctx, rec, ins):
    sizes = rec.attrs["sizes"]
    if rec.attrs["axis"] in ctx.varies(rec, 0):
        unsupported(rec, "a split along the batch axis; export with dynamic_batch=False")
    return ctx.node("Split", [ins[0], ctx.ints(sizes)], n_out=len(sizes), axis=rec.attrs["axis"])


@emitter("pad")
def _pad(ctx, rec, ins):
    pads, mode = rec.attrs["pads"], rec.attrs["mode"]
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}[mode]  # fmt: skip
    if mode == "circular" and ctx.opset < 19:
        unsupported(rec, f"circular padding needs opset 19 or newer (ONNX Pad 'wrap'), not "
                         f"{ctx.opset}")  # fmt: skip
    flat = [b for b, _ in pads] + [a for _, a in pads]
    args = [ins[0], ctx.ints(flat)]
    if mode == "constant":
        args.append(ctx.scalar(rec.attrs["value"], rec.inputs[0].dtype))
    return ctx.node("Pad", args, mode=onnx_mode)


@emitter("tile")
def _tile(ctx, rec, ins):
    reps, x, nd = list(rec.attrs["reps"]), ins[0], rec.inputs[0].ndim
    if len(reps) > nd:  # numpy puts new size-1 dims in front of x
        x = ctx.unsqueeze(x, list(range(len(reps) - nd)))
    reps = [1] * (nd - len(reps)) + reps
    return ctx.node("Tile", [x, ctx.ints(reps)])


@emitter("repeat")
def _repeat(ctx, rec, ins):
    repeats, axis = rec.attrs["repeats"], rec.attrs["axis"]
    x, shape = ins[0], rec.inputs[0].shape
    if axis is None:
        x, n, axis = ctx.reshape(x, [-1]), int(np.prod(shape)), 0
        if ctx.varies(rec, 0):
            unsupported(rec, "a flattening repeat of a batch; export with dynamic_batch=False")
    else:
        n = shape[axis]
        if axis in ctx.varies(rec, 0):
            unsupported(rec, "a repeat along the batch axis; export with dynamic_batch=False")
    idx = np.repeat(np.arange(n, dtype=np.int64), repeats)
    return ctx.node("Gather", [x, ctx.ints(idx)], axis=axis)


@emitter("index_select")
def _index_select(ctx, rec, ins):
    return ctx.node("Gather", [ins[0], ins[1]], axis=rec.attrs["axis"])


@emitter("gather")
def _gather(ctx, rec, ins):
    axis, x = rec.attrs["axis"], ins[0]
    xs, idx = rec.inputs[0].shape, rec.inputs[1].shape
    cut = [d for d in range(len(xs)) if d != axis and idx[d] < xs[d]]
    if cut:  # torch.gather reads only the index's extent off the gather axis
        x = ctx.node("Slice", [x, ctx.ints([0] * len(cut)), ctx.ints([idx[d] for d in cut]),
                               ctx.ints(cut)])  # fmt: skip
    return ctx.node("GatherElements", [x, ins[1]], axis=axis)


# -- x[index] -------------------------------------------------------------------------------


def _expand_ellipsis(spec, ndim: int, n_arrays_dims) -> list:
    used = sum(1 for s in spec if s[0] in ("int", "slice", "array"))
    out = []
    for s in spec:
        if s[0] == "ellipsis":
            out.extend([("slice", None, None, None)] * (ndim - used))
        else:
            out.append(s)
    while sum(1 for s in out if s[0] != "new") < ndim:
        out.append(("slice", None, None, None))
    return out


@emitter("getitem")
def _getitem(ctx, rec, ins):
    x, xs = ins[0], rec.inputs[0].shape
    arrays = [t.data for t in rec.inputs[1:]]
    if any(id(t) in ctx.live for t in rec.inputs[1:]):
        return _getitem_live(ctx, rec, ins)
    if len(arrays) > 1 or any(a.dtype == np.bool_ and a.ndim != 1 for a in arrays):
        unsupported(rec, "indexing with several index arrays or an n-d mask has no ONNX export")
    spec = _expand_ellipsis(rec.attrs["index"], len(xs), None)
    slices, ints, array_axis, news = [], [], None, []
    ax = out_pos = 0
    for s in spec:
        kind = s[0]
        if kind == "new":
            news.append(out_pos)
            out_pos += 1
            continue
        if kind == "slice" and s[1:] != (None, None, None):
            slices.append((ax, *s[1:]))
        if kind == "int":
            ints.append((ax, s[1]))
        elif kind == "array":
            array_axis = ax
            out_pos += 1 if arrays[0].dtype == np.bool_ else arrays[0].ndim
        else:
            out_pos += 1
        ax += 1
    # NOTE: torch's rule (the engine's): ints select first, so one index array keeps its place
    # however the ints lie; the Gathers below do exactly that.
    if slices:
        x = _slice(ctx, rec, x, slices)
    for a, i in sorted(ints, reverse=True):
        x = ctx.node("Gather", [x, ctx.const(np.array(i, np.int64), "index")], axis=a)
    if array_axis is not None:
        arr = arrays[0]
        idx = np.flatnonzero(arr) if arr.dtype == np.bool_ else arr.astype(np.int64)
        shift = sum(1 for a, _ in ints if a < array_axis)
        if array_axis in ctx.varies(rec, 0):
            unsupported(rec, "an index array along the batch axis; export with "
                             "dynamic_batch=False")  # fmt: skip
        x = ctx.node("Gather", [x, ctx.const(idx, "index")], axis=array_axis - shift)
    if news:
        x = ctx.unsqueeze(x, news)
    if x == ins[0]:
        x = ctx.node("Identity", [x])
    return x


def _getitem_live(ctx, rec, ins):
    """``x[index]`` with an index tensor computed in the graph: one bool mask of x's shape
    (``y[y > 0]``, NonZero + GatherND) or one int tensor on the first dim (Gather)."""
    spec, idx = rec.attrs["index"], rec.inputs[1]
    if spec == (("array",),) and idx.dtype == np.bool_ and idx.shape == rec.inputs[0].shape:
        at = ctx.node("Transpose", [ctx.node("NonZero", [ins[1]])], perm=[1, 0])
        return ctx.node("GatherND", [ins[0], at])
    if spec == (("array",),) and idx.dtype.kind in "iu":
        i = ins[1] if idx.dtype == np.int64 else ctx.node("Cast", [ins[1]], to=onnx_dtype(np.int64))
        return ctx.node("Gather", [ins[0], i], axis=0)
    unsupported(rec, "indexing with an index computed in the graph exports only as x[mask] "
                     "with a bool mask of x's shape or x[idx] with one int tensor")  # fmt: skip


def _slice(ctx, rec, x, slices):
    moving = ctx.varies(rec, 0)
    starts, ends, axes, steps = [], [], [], []
    for ax, start, stop, step in slices:
        step = 1 if step is None else step
        if start is None:
            start = 0 if step > 0 else -1
        if stop is None:
            stop = INT64_MAX if step > 0 else INT64_MIN
        elif ax in moving and stop > 0 and stop >= rec.inputs[0].shape[ax]:
            stop = INT64_MAX  # a stop past the traced batch is "to the end" at any batch
        starts.append(start)
        ends.append(stop)
        axes.append(ax)
        steps.append(step)
    args = [x, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes), ctx.ints(steps)]
    return ctx.node("Slice", args)


@emitter("cumsum", "cumprod")
def _scan(ctx, rec, ins):
    a = rec.attrs
    op = "CumSum" if rec.name == "cumsum" else "CumProd"  # CumProd needs opset 26 (checked later)
    return ctx.node(op, [ins[0], ctx.scalar(a["axis"], np.int64)],
                    exclusive=int(a["exclusive"]), reverse=int(a["reverse"]))  # fmt: skip


@emitter("index_add")
def _index_add(ctx, rec, ins):
    if ctx.opset < 16:
        unsupported(rec, f"index_add exports as ScatterND with reduction 'add', which needs "
                         f"opset 16 or newer, not {ctx.opset}")  # fmt: skip
    axis, nd = rec.attrs["axis"], rec.inputs[0].ndim
    perm = [axis, *(d for d in range(nd) if d != axis)]
    x, src = ins[0], ins[2]
    if axis:  # ScatterND indexes the leading dims: bring the axis to the front
        x = ctx.node("Transpose", [x], perm=perm)
        src = ctx.node("Transpose", [src], perm=perm)
    y = ctx.node("ScatterND", [x, ctx.unsqueeze(ins[1], [1]), src], reduction="add")
    return ctx.node("Transpose", [y], perm=[int(p) for p in np.argsort(perm)]) if axis else y
