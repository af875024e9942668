"""ONNX emitter of ``x[index] = value`` (``engine/ops/setitem.py``) as ScatterND.

A fixed index (no tensor computed in the graph) is turned into the constant coordinates of the
places it writes, in the order numpy walks them, and the value is expanded to that region.
With a dynamic batch the index must start with a full ``:`` over it (``h[:, t] = ...``): the
batch dim is moved last, the rest of the index addressed as above. A bool mask computed in
the graph (``y[y > 0] = 0``) is a Where for one value, a ScatterND at its NonZero coordinates
for a value per selected element.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.ops.index import _build
from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported

BOOL = onnx_dtype(np.bool_)
FULL = ("slice", None, None, None)


def _coordinates(shape, spec, arrays) -> tuple[np.ndarray, tuple]:
    """(coordinates (region..., rank), region shape) of the places ``x[index]`` writes."""
    flat = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    first, second = _build(spec, arrays)
    region = flat[first] if second is None else flat[first][second]
    region = np.asarray(region)
    coords = np.stack(np.unravel_index(region, shape), axis=-1).astype(np.int64)
    return coords, region.shape


def _value(ctx, rec, ins) -> str:
    v = ins[1]
    if rec.inputs[1].dtype != rec.inputs[0].dtype:
        v = ctx.node("Cast", [v], to=onnx_dtype(rec.inputs[0].dtype))
    return v


@emitter("setitem")
def _setitem(ctx, rec, ins):
    spec, x = rec.attrs["index"], rec.inputs[0]
    arrays = rec.inputs[2:]
    live = [i for i in range(2, len(ins)) if id(rec.inputs[i]) in ctx.live]
    if live:
        return _live_mask(ctx, rec, ins, spec)
    value = _value(ctx, rec, ins)
    batch = 0 in ctx.varies(rec, 0)
    if not batch:
        coords, region = _coordinates(x.shape, spec, [a.data for a in arrays])
        updates = ctx.node("Expand", [value, ctx.ints(region)])
        return ctx.node("ScatterND", [ins[0], ctx.const(coords, "set_at"), updates])
    if not spec or spec[0] != FULL or any(s[0] in ("new", "ellipsis") for s in spec):
        unsupported(rec, "x[index] = value with a dynamic batch needs the index to start with "
                         "a full ':' over the batch; export with dynamic_batch=False")  # fmt: skip
    nd = x.ndim
    coords, region = _coordinates(x.shape[1:], spec[1:], [a.data for a in arrays])
    to_last = [*range(1, nd), 0]
    data = ctx.node("Transpose", [ins[0]], perm=to_last)
    n = ctx.node("Gather", [ctx.node("Shape", [ins[0]]), ctx.ints([0])], axis=0)
    shape = ctx.node("Concat", [n, ctx.ints(region)], axis=0)
    upd = ctx.node("Expand", [value, shape])
    upd = ctx.node("Transpose", [upd], perm=[*range(1, len(region) + 1), 0])
    out = ctx.node("ScatterND", [data, ctx.const(coords, "set_at"), upd])
    return ctx.node("Transpose", [out], perm=[nd - 1, *range(nd - 1)])


def _live_mask(ctx, rec, ins, spec):
    x, arrays = rec.inputs[0], rec.inputs[2:]
    if spec != (("array",),) or arrays[0].dtype != np.bool_ or arrays[0].shape != x.shape:
        unsupported(rec, "x[index] = value with an index computed in the graph exports only as "
                         "one bool mask of x's shape (y[y > 0] = 0)")  # fmt: skip
    mask, value = ins[2], _value(ctx, rec, ins)
    if rec.inputs[1].data.size == 1:
        return ctx.node("Where", [mask, ctx.reshape(value, []), ins[0]])
    at = ctx.node("Transpose", [ctx.node("NonZero", [mask])], perm=[1, 0])
    return ctx.node("ScatterND", [ins[0], at, ctx.reshape(value, [-1])])
