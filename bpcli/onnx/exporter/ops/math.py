"""ONNX emitters of the ops in ``math``, ``math_binary``, ``logic``, ``activation_more`` and
``loss_more`` that have no single ONNX node (ops that map to one node without attributes,
e.g. tan -> Tan, export through their class's ``onnx`` name).

ONNX has no Trunc, Log1p, Expm1, Atan2, Copysign, LogAddExp or Lerp: each is written as the
nodes that compute it, in the torch-compatible form (remainder takes the divisor's sign, lerp
its two-sided formula). Known gaps, each a clear export error: shifts of signed integers
(ONNX BitShift is unsigned only) and bitwise ops on integers before opset 18.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter, same_type, unsupported

BOOL = onnx_dtype(np.bool_)


def _trunc(ctx, x: str) -> str:
    return ctx.node("Mul", [ctx.node("Sign", [x]), ctx.node("Floor", [ctx.node("Abs", [x])])])


def _as_bool(ctx, rec, ins, i: int) -> str:
    return ins[i] if dtype_of(rec, i) == np.bool_ else ctx.node("Cast", [ins[i]], to=BOOL)


def _select(ctx, cond: str, a: str, b: str) -> str:
    return ctx.node("Where", [cond, a, b])


# -- unary ----------------------------------------------------------------------------------


@emitter("log2", "log10")
def _log_base(ctx, rec, ins):
    base = 2.0 if rec.name == "log2" else 10.0
    return ctx.node("Div", [ctx.node("Log", [ins[0]]), ctx.scalar(math.log(base), dtype_of(rec))])


@emitter("log1p")
def _log1p(ctx, rec, ins):
    return ctx.node("Log", [ctx.node("Add", [ins[0], ctx.scalar(1, dtype_of(rec))])])


@emitter("expm1")
def _expm1(ctx, rec, ins):
    return ctx.node("Sub", [ctx.node("Exp", [ins[0]]), ctx.scalar(1, dtype_of(rec))])


@emitter("exp2")
def _exp2(ctx, rec, ins):
    return ctx.node("Pow", [ctx.scalar(2, dtype_of(rec)), ins[0]])


@emitter("sign")
def _sign(ctx, rec, ins):
    x = ins[0]
    if dtype_of(rec).kind != "f":
        return ctx.node("Sign", [x])
    # torch's sign is 0 at nan; ONNX Sign keeps nan
    zero = ctx.scalar(0, dtype_of(rec))
    return _select(ctx, ctx.node("IsNaN", [x]), zero, ctx.node("Sign", [x]))


@emitter("trunc")
def _trunc_op(ctx, rec, ins):
    return _trunc(ctx, ins[0])


@emitter("frac")
def _frac(ctx, rec, ins):
    return ctx.node("Sub", [ins[0], _trunc(ctx, ins[0])])


@emitter("round")
def _round(ctx, rec, ins):
    d, x, dt = rec.attrs["decimals"], ins[0], dtype_of(rec)
    if d == 0:
        return ctx.node("Round", [x])
    scale = ctx.scalar(10.0 ** abs(d), dt)
    if d > 0:  # as np.round/torch: scale up, round half to even, scale back
        return ctx.node("Div", [ctx.node("Round", [ctx.node("Mul", [x, scale])]), scale])
    return ctx.node("Mul", [ctx.node("Round", [ctx.node("Div", [x, scale])]), scale])


# -- binary ---------------------------------------------------------------------------------


@emitter("atan2")
def _atan2(ctx, rec, ins):
    y, x = same_type(ctx, rec, ins)
    dt = dtype_of(rec, out=True)
    zero, pi = ctx.scalar(0, dt), ctx.scalar(math.pi, dt)
    base = ctx.node("Atan", [ctx.node("Div", [y, x])])
    # x < 0: shift by +-pi towards y's side (y = +0 gives +pi, as atan2)
    y_neg = ctx.node("Less", [ctx.node("Reciprocal", [y]), zero])
    shift = _select(ctx, y_neg, ctx.node("Neg", [pi]), pi)
    left = ctx.node("Add", [base, shift])
    at_zero = ctx.node("Mul", [ctx.node("Sign", [y]), ctx.scalar(math.pi / 2, dt)])
    x_zero = ctx.node("Equal", [x, zero])
    # y = x = 0: atan2 gives +-0 for x = +0 and +-pi for x = -0
    x_neg = ctx.node("Less", [ctx.node("Reciprocal", [x]), zero])
    both_zero = ctx.node("And", [x_zero, ctx.node("Equal", [y, zero])])
    at_origin = _select(ctx, x_neg, shift, ctx.node("Mul", [y, zero]))
    out = _select(ctx, x_neg, left, base)
    out = _select(ctx, x_zero, at_zero, out)
    return _select(ctx, both_zero, at_origin, out)


@emitter("copysign")
def _copysign(ctx, rec, ins):
    a, b = same_type(ctx, rec, ins)
    mag = ctx.node("Abs", [a])
    # 1 / b < 0 catches -0.0 too, which b < 0 would miss
    neg = ctx.node("Less", [ctx.node("Reciprocal", [b]), ctx.scalar(0, dtype_of(rec, out=True))])
    return _select(ctx, neg, ctx.node("Neg", [mag]), mag)


@emitter("logaddexp")
def _logaddexp(ctx, rec, ins):
    a, b = same_type(ctx, rec, ins)
    dt = dtype_of(rec, out=True)
    m = ctx.node("Max", [a, b])
    e = ctx.node("Exp", [ctx.node("Neg", [ctx.node("Abs", [ctx.node("Sub", [a, b])])])])
    return ctx.node("Add", [m, ctx.node("Log", [ctx.node("Add", [e, ctx.scalar(1, dt)])])])


@emitter("hypot")
def _hypot(ctx, rec, ins):
    a, b = ins
    return ctx.node("Sqrt", [ctx.node("Add", [ctx.node("Mul", [a, a]), ctx.node("Mul", [b, b])])])


@emitter("fmod")
def _fmod(ctx, rec, ins):
    return ctx.node("Mod", same_type(ctx, rec, ins), fmod=1)


def _wrong_sign(ctx, r: str, b: str, dt) -> str:
    """r != 0 and its sign differs from b's: where truncated results need the floor fix."""
    zero = ctx.scalar(0, dt)
    nonzero = ctx.node("Not", [ctx.node("Equal", [r, zero])])
    differ = ctx.node("Xor", [ctx.node("Less", [r, zero]), ctx.node("Less", [b, zero])])
    return ctx.node("And", [nonzero, differ])


@emitter("remainder")
def _remainder(ctx, rec, ins):
    a, b = same_type(ctx, rec, ins)
    dt = dtype_of(rec, out=True)
    if dt.kind != "f":
        return ctx.node("Mod", [a, b], fmod=0)
    r = ctx.node("Mod", [a, b], fmod=1)  # fmod, then moved onto b's side as torch does
    return ctx.node("Add", [r, _select(ctx, _wrong_sign(ctx, r, b, dt), b, ctx.scalar(0, dt))])


@emitter("rounded_div")
def _rounded_div(ctx, rec, ins):
    a, b = same_type(ctx, rec, ins)
    dt, mode = dtype_of(rec, out=True), rec.attrs["mode"]
    q = ctx.node("Div", [a, b])
    if dt.kind == "f":
        return _trunc(ctx, q) if mode == "trunc" else ctx.node("Floor", [q])
    if mode == "trunc":  # integer Div truncates
        return q
    r = ctx.node("Sub", [a, ctx.node("Mul", [q, b])])
    one = _select(ctx, _wrong_sign(ctx, r, b, dt), ctx.scalar(1, dt), ctx.scalar(0, dt))
    return ctx.node("Sub", [q, one])


@emitter("lerp")
def _lerp(ctx, rec, ins):
    a, b, w = ins
    dt = dtype_of(rec, out=True)
    d = ctx.node("Sub", [b, a])
    small = ctx.node("Less", [ctx.node("Abs", [w]), ctx.scalar(0.5, dt)])
    lo = ctx.node("Add", [a, ctx.node("Mul", [w, d])])
    hi = ctx.node("Sub", [b, ctx.node("Mul", [d, ctx.node("Sub", [ctx.scalar(1, dt), w])])])
    return _select(ctx, small, lo, hi)


# -- predicates, logic, bitwise ---------------------------------------------------------------


@emitter("isnan", "isinf", "isfinite")
def _finite(ctx, rec, ins):
    x = ins[0]
    if dtype_of(rec).kind != "f":  # integers: never nan/inf; x == x is all True
        same = ctx.node("Equal", [x, x])
        return same if rec.name == "isfinite" else ctx.node("Not", [same])
    if rec.name != "isfinite":
        return ctx.node("IsNaN" if rec.name == "isnan" else "IsInf", [x])
    bad = ctx.node("Or", [ctx.node("IsNaN", [x]), ctx.node("IsInf", [x])])
    return ctx.node("Not", [bad])


LOGIC = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}
BITWISE = {"bitwise_and": ("BitwiseAnd", "And"), "bitwise_or": ("BitwiseOr", "Or"),
           "bitwise_xor": ("BitwiseXor", "Xor"), "bitwise_not": ("BitwiseNot", "Not")}  # fmt: skip


@emitter(*LOGIC)
def _logical(ctx, rec, ins):
    return ctx.node(LOGIC[rec.name], [_as_bool(ctx, rec, ins, 0), _as_bool(ctx, rec, ins, 1)])


@emitter("logical_not")
def _logical_not(ctx, rec, ins):
    return ctx.node("Not", [_as_bool(ctx, rec, ins, 0)])


@emitter(*BITWISE)
def _bitwise(ctx, rec, ins):
    ints, logic = BITWISE[rec.name]
    dt = dtype_of(rec, out=True)
    if dt == np.bool_:
        return ctx.node(logic, [_as_bool(ctx, rec, ins, i) for i in range(len(ins))])
    if ctx.opset < 18:
        unsupported(rec, f"{ints} on integers needs ONNX opset >= 18 (got {ctx.opset})")
    to = onnx_dtype(dt)
    args = [n if dtype_of(rec, i) == dt else ctx.node("Cast", [n], to=to)
            for i, n in enumerate(ins)]  # fmt: skip
    return ctx.node(ints, args)


@emitter("bitwise_left_shift", "bitwise_right_shift")
def _shift(ctx, rec, ins):
    dt = dtype_of(rec, out=True)
    if dt.kind != "u":
        unsupported(rec, f"ONNX BitShift takes unsigned integers only, got {dt}")
    to = onnx_dtype(dt)
    a, s = (n if dtype_of(rec, i) == dt else ctx.node("Cast", [n], to=to)
            for i, n in enumerate(ins))  # fmt: skip
    left = rec.name == "bitwise_left_shift"
    bits = ctx.scalar(dt.itemsize * 8, dt)
    shifted = ctx.node("BitShift", [a, ctx.node("Min", [s, ctx.scalar(dt.itemsize * 8 - 1, dt)])],
                       direction="LEFT" if left else "RIGHT")  # fmt: skip
    # past the bit width torch gives 0 (unsigned: both directions)
    return _select(ctx, ctx.node("Less", [s, bits]), shifted, ctx.scalar(0, dt))


# -- activations and losses -----------------------------------------------------------------


@emitter("logsigmoid")
def _logsigmoid(ctx, rec, ins):
    x, dt = ins[0], dtype_of(rec)
    e = ctx.node("Exp", [ctx.node("Neg", [ctx.node("Abs", [x])])])
    lse = ctx.node("Log", [ctx.node("Add", [e, ctx.scalar(1, dt)])])
    return ctx.node("Sub", [ctx.node("Min", [x, ctx.scalar(0, dt)]), lse])


@emitter("hardswish")
def _hardswish(ctx, rec, ins):
    if ctx.opset >= 14:
        return ctx.node("HardSwish", [ins[0]])
    return ctx.node("Mul", [ins[0], ctx.node("HardSigmoid", [ins[0]], alpha=1 / 6, beta=0.5)])


@emitter("clamp_min_passthrough")
def _clamp_min_passthrough(ctx, rec, ins):
    return ctx.node("Max", [ins[0], ctx.scalar(rec.attrs["eps"], dtype_of(rec))])


@emitter("binary_cross_entropy")
def _bce(ctx, rec, ins):
    x, y = ins[0], ins[1]
    dt = dtype_of(rec)
    one, floor = ctx.scalar(1, dt), ctx.scalar(-100, dt)
    lx = ctx.node("Max", [ctx.node("Log", [x]), floor])
    l1x = ctx.node("Max", [ctx.node("Log", [ctx.node("Sub", [one, x])]), floor])
    terms = ctx.node("Add", [ctx.node("Mul", [y, lx]),
                             ctx.node("Mul", [ctx.node("Sub", [one, y]), l1x])])  # fmt: skip
    if len(ins) > 2:
        terms = ctx.node("Mul", [terms, ins[2]])
    loss = ctx.node("Neg", [terms])
    red, nd = rec.attrs["reduction"], len(rec.inputs[0].shape)
    if red == "none" or nd == 0:
        return loss if red == "none" or nd else ctx.node("Identity", [loss])
    return ctx.reduce("ReduceMean" if red == "mean" else "ReduceSum", loss, range(nd), False)
