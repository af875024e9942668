"""ONNX emitters of the reductions of ``engine/ops/reduce_more.py`` that have an ONNX form:
all/any (ReduceMin/ReduceMax over a 0/1 cast, since ONNX reduces no bools before opset 20),
count_nonzero, nansum/nanmean (nan replaced by 0 and left out of the count) and std (the
square root of ``var``'s nodes). The others of the family are in ``select.py``.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import EMITTERS, dtype_of, emitter

BOOL, INT32, INT64 = (onnx_dtype(t) for t in (np.bool_, np.int32, np.int64))


def _reduce_axes(ctx, op_type: str, x: str, axes, keepdims: bool) -> str:
    if not axes:  # a 0-d input: nothing to reduce
        return ctx.node("Identity", [x])
    return ctx.reduce(op_type, x, axes, keepdims)


def truthy(ctx, rec, x: str) -> str:
    """Input 0 as bools: nonzero (and nan) is true, as torch's ``bool()`` of a number."""
    return x if dtype_of(rec) == np.bool_ else ctx.node("Cast", [x], to=BOOL)


@emitter("all", "any")
def _all_any(ctx, rec, ins):
    a = rec.attrs
    as_int = ctx.node("Cast", [truthy(ctx, rec, ins[0])], to=INT32)
    op_type = "ReduceMin" if rec.name == "all" else "ReduceMax"
    y = _reduce_axes(ctx, op_type, as_int, a["axes"], a["keepdims"])
    return ctx.node("Cast", [y], to=onnx_dtype(dtype_of(rec, out=True)))  # bool, or torch's uint8


@emitter("count_nonzero")
def _count_nonzero(ctx, rec, ins):
    ones = ctx.node("Cast", [truthy(ctx, rec, ins[0])], to=INT64)
    return _reduce_axes(ctx, "ReduceSum", ones, rec.attrs["axes"], False)


def _not_nan(ctx, rec, x: str) -> tuple[str, str]:
    """(x with nan set to 0, the 0/1 mask of the non-nan entries in x's dtype)."""
    nan = ctx.node("IsNaN", [x])
    zero = ctx.scalar(0, dtype_of(rec))
    ok = ctx.node("Cast", [ctx.node("Not", [nan])], to=onnx_dtype(dtype_of(rec)))
    return ctx.node("Where", [nan, zero, x]), ok


@emitter("nansum")
def _nansum(ctx, rec, ins):
    if dtype_of(rec).kind != "f":
        return _reduce_axes(ctx, "ReduceSum", ins[0], rec.attrs["axes"], rec.attrs["keepdims"])
    clean, _ = _not_nan(ctx, rec, ins[0])
    return _reduce_axes(ctx, "ReduceSum", clean, rec.attrs["axes"], rec.attrs["keepdims"])


@emitter("nanmean")
def _nanmean(ctx, rec, ins):
    a = rec.attrs
    clean, ok = _not_nan(ctx, rec, ins[0])
    total = _reduce_axes(ctx, "ReduceSum", clean, a["axes"], a["keepdims"])
    return ctx.node("Div", [total, _reduce_axes(ctx, "ReduceSum", ok, a["axes"], a["keepdims"])])


@emitter("std")
def _std(ctx, rec, ins):
    return ctx.node("Sqrt", [EMITTERS["var"](ctx, rec, ins)])
