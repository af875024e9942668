"""ONNX emitters of the elementwise, activation and reduction ops.

``EMITTERS`` maps an op's registry name to ``emit(ctx, rec, ins) -> output name(s)``: ``rec`` is
the traced Record (``rec.attrs`` are the op's attrs, ``rec.inputs``/``rec.outputs`` its
tensors), ``ins`` the ONNX names of its inputs. Shape, index and layer ops are in
``shape.py`` and ``nn.py``, which add to the same table. Fake quantization
exports as the QuantizeLinear -> DequantizeLinear pair.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from bpcli.engine.dtypes import result_dtype
from bpcli.errors import BpcliError
from bpcli.onnx.exporter.context import onnx_dtype

EMITTERS: dict = {}


def emitter(*names):
    def register(fn):
        for n in names:
            EMITTERS[n] = fn
        return fn

    return register


def dtype_of(rec, i: int = 0, out: bool = False) -> np.dtype:
    return (rec.outputs if out else rec.inputs)[i].dtype


# -- one ONNX op each -----------------------------------------------------------------------

SIMPLE = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "neg": "Neg",
    "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos",
    "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf", "clone": "Identity",
    "maximum": "Max", "minimum": "Min", "matmul": "MatMul", "eq": "Equal", "lt": "Less",
    "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
}  # fmt: skip


def same_type(ctx, rec, ins, start: int = 0) -> list[str]:
    """The names of inputs ``start:``, each cast to the dtype torch's promotion gives them
    (``engine/dtypes.result_dtype``, as the engine's ``same_float`` does)."""
    ts = rec.inputs[start:]
    ins = ins[start:]
    if len({t.dtype for t in ts}) == 1:
        return list(ins)
    dt = result_dtype(*ts)  # Tensors carry .dtype and .ndim, all the rule reads
    to = onnx_dtype(dt)
    return [
        n if t.dtype == dt else ctx.node("Cast", [n], to=to) for n, t in zip(ins, ts, strict=True)
    ]


def _simple(op_type):
    def emit(ctx, rec, ins):
        return ctx.node(op_type, same_type(ctx, rec, ins))

    return emit


for _name, _type in SIMPLE.items():
    EMITTERS[_name] = _simple(_type)


@emitter("ne")
def _ne(ctx, rec, ins):
    return ctx.node("Not", [ctx.node("Equal", same_type(ctx, rec, ins))])


@emitter("where")
def _where(ctx, rec, ins):
    c = ins[0]
    if dtype_of(rec, 0) != np.bool_:
        c = ctx.node("Cast", [c], to=onnx_dtype(np.bool_))
    return ctx.node("Where", [c, *same_type(ctx, rec, ins, 1)])


@emitter("rsqrt")
def _rsqrt(ctx, rec, ins):
    return ctx.node("Reciprocal", [ctx.node("Sqrt", [ins[0]])])


@emitter("cast")
def _cast(ctx, rec, ins):
    return ctx.node("Cast", [ins[0]], to=onnx_dtype(rec.attrs["dtype"]))


# -- activations ----------------------------------------------------------------------------


@emitter("leaky_relu")
def _leaky_relu(ctx, rec, ins):
    return ctx.node("LeakyRelu", [ins[0]], alpha=float(rec.attrs["alpha"]))


@emitter("elu")
def _elu(ctx, rec, ins):
    return ctx.node("Elu", [ins[0]], alpha=float(rec.attrs.get("alpha", 1.0)))


@emitter("selu")
def _selu(ctx, rec, ins):
    from bpcli.engine.ops.activation import SELU_ALPHA, SELU_SCALE

    return ctx.node("Selu", [ins[0]], alpha=SELU_ALPHA, gamma=SELU_SCALE)


@emitter("gelu")
def _gelu(ctx, rec, ins):
    x, approx, dt = ins[0], rec.attrs["approximate"], dtype_of(rec)
    if ctx.opset >= 20:
        return ctx.node("Gelu", [x], approximate=approx)
    if approx == "none":  # x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))
        inner = ctx.node("Erf", [ctx.node("Mul", [x, ctx.scalar(1 / math.sqrt(2), dt)])])
    else:  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = ctx.node("Mul", [ctx.node("Pow", [x, ctx.scalar(3, dt)]),
                                ctx.scalar(0.044715, dt)])  # fmt: skip
        arg = ctx.node("Mul", [ctx.node("Add", [x, cube]), ctx.scalar(math.sqrt(2 / math.pi), dt)])
        inner = ctx.node("Tanh", [arg])
    half_x = ctx.node("Mul", [x, ctx.scalar(0.5, dt)])
    return ctx.node("Mul", [half_x, ctx.node("Add", [inner, ctx.scalar(1, dt)])])


@emitter("silu")
def _silu(ctx, rec, ins):
    return ctx.node("Mul", [ins[0], ctx.node("Sigmoid", [ins[0]])])


@emitter("softplus")
def _softplus(ctx, rec, ins):
    x, dt = ins[0], dtype_of(rec)
    beta, thr = rec.attrs["beta"], rec.attrs["threshold"]
    bx = x if beta == 1 else ctx.node("Mul", [x, ctx.scalar(beta, dt)])
    y = ctx.node("Softplus", [bx])
    if beta != 1:
        y = ctx.node("Div", [y, ctx.scalar(beta, dt)])
    # torch's threshold: the identity where b x > threshold
    big = ctx.node("Greater", [bx, ctx.scalar(thr, dt)])
    return ctx.node("Where", [big, x, y])


@emitter("clip", "hardtanh")
def _clip(ctx, rec, ins):
    dt = dtype_of(rec)
    lo, hi = rec.attrs["min"], rec.attrs["max"]
    if lo is not None and hi is not None and lo > hi:
        lo = hi  # numpy/torch: every element becomes max
    args = [ins[0], "" if lo is None else ctx.scalar(lo, dt), "" if hi is None else
            ctx.scalar(hi, dt)]  # fmt: skip
    while args[-1] == "":
        args.pop()
    return ctx.node("Clip", args)


@emitter("softmax")
def _softmax(ctx, rec, ins):
    return ctx.node("Softmax", [ins[0]], axis=rec.attrs["axis"])


@emitter("log_softmax")
def _log_softmax(ctx, rec, ins):
    return ctx.node("LogSoftmax", [ins[0]], axis=rec.attrs["axis"])


# -- reductions -----------------------------------------------------------------------------

REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin",
          "logsumexp": "ReduceLogSumExp", "l2norm": "ReduceL2"}  # fmt: skip


def _reduce(op_type):
    def emit(ctx, rec, ins):
        axes = rec.attrs["axes"]
        if not axes:  # a 0-d input: nothing to reduce
            return ctx.node("Identity", [ins[0]])
        return ctx.reduce(op_type, ins[0], axes, rec.attrs["keepdims"])

    return emit


for _name, _type in REDUCE.items():
    EMITTERS[_name] = _reduce(_type)


def count(ctx, rec, x: str, axes) -> str:
    """The number of elements over ``axes`` of input 0, as a float scalar of its dtype
    (computed in the graph when those axes follow the batch)."""
    shape, dt = rec.inputs[0].shape, dtype_of(rec)
    if not ctx.varies(rec, 0) & set(axes):
        return ctx.scalar(math.prod(shape[a] for a in axes), dt)
    sizes = ctx.node("Gather", [ctx.node("Shape", [x]), ctx.ints(axes)], axis=0)
    n = ctx.reduce("ReduceProd", sizes, [0], False)
    return ctx.node("Cast", [n], to=onnx_dtype(dt))


@emitter("var")
def _var(ctx, rec, ins):
    x, a, dt = ins[0], rec.attrs, dtype_of(rec)
    axes = a["axes"]
    if not axes:
        return ctx.node("Sub", [x, x])  # 0-d: (x - x)^2 / (1 - c) is 0 (nan for c = 1 too)
    d = ctx.node("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
    s = ctx.reduce("ReduceSum", ctx.node("Mul", [d, d]), axes, a["keepdims"])
    denom = ctx.node("Sub", [count(ctx, rec, x, axes), ctx.scalar(a["correction"], dt)])
    return ctx.node("Div", [s, denom])


@emitter("pnorm")
def _pnorm(ctx, rec, ins):
    a, dt = rec.attrs, dtype_of(rec)
    powed = ctx.node("Pow", [ctx.node("Abs", [ins[0]]), ctx.scalar(a["p"], dt)])
    s = ctx.reduce("ReduceSum", powed, a["axes"], a["keepdims"])
    return ctx.node("Pow", [s, ctx.scalar(1 / a["p"], dt)])


@emitter("argmax", "argmin")
def _arg(ctx, rec, ins):
    op_type = "ArgMax" if rec.name == "argmax" else "ArgMin"
    axis, keep = rec.attrs["axis"], rec.attrs["keepdims"]
    x, nd = ins[0], rec.inputs[0].ndim
    if nd == 0:
        return ctx.const(np.zeros((), np.int64), "zero")
    if axis is not None:
        return ctx.node(op_type, [x], axis=axis, keepdims=int(keep))
    flat = ctx.reshape(x, [-1])
    y = ctx.node(op_type, [flat], axis=0, keepdims=0)
    return ctx.reshape(y, [1] * nd) if keep else y


@emitter("topk")
def _topk(ctx, rec, ins):
    a = rec.attrs
    return ctx.node("TopK", [ins[0], ctx.ints([a["k"]])], n_out=2, axis=a["axis"],
                    largest=int(a["largest"]), sorted=int(a["sorted"]))  # fmt: skip


def unsupported(rec, why: str):
    raise BpcliError(why, rec.where)


# -- fake quantization ----------------------------------------------------------------------

# an integer range -> the ONNX type of its zero point (which sets QuantizeLinear's output type)
# and the first opset that quantizes to it
QUANT_TYPES = {
    (-128, 127): (TensorProto.INT8, 13), (0, 255): (TensorProto.UINT8, 13),
    (-32768, 32767): (TensorProto.INT16, 21), (0, 65535): (TensorProto.UINT16, 21),
    (-8, 7): (TensorProto.INT4, 21), (0, 15): (TensorProto.UINT4, 21),
    (-2, 1): (TensorProto.INT2, 25), (0, 3): (TensorProto.UINT2, 25),
}  # fmt: skip


def _quant_type(ctx, rec) -> int:
    a = rec.attrs
    qmin, qmax = a["qmin"], a["qmax"]
    if (qmin, qmax) not in QUANT_TYPES:
        why = (f"fake quantization to [{qmin}, {qmax}]: ONNX quantizes to the full range of an "
               "integer type only (int8 [-128, 127], uint8 [0, 255], ...)")  # fmt: skip
        unsupported(rec, why)
    code, since = QUANT_TYPES[qmin, qmax]
    if a["block_size"]:
        since = max(since, 21)
    if ctx.opset < since:
        what = "blocked scales" if a["block_size"] else helper.tensor_dtype_to_string(code)
        unsupported(rec, f"QuantizeLinear with {what} needs opset {since}+ (export with "
                    f"--opset {since} or newer)")  # fmt: skip
    if dtype_of(rec) != np.float32:
        unsupported(rec, f"QuantizeLinear of {dtype_of(rec)}: ONNX quantizes float32 only here")
    return code


@emitter("fake_quantize")
def _fake_quantize(ctx, rec, ins):
    """QuantizeLinear -> DequantizeLinear with one scale and zero point (the QDQ format)."""
    code, a = _quant_type(ctx, rec), rec.attrs
    zp = rec.inputs[2]
    if id(zp) in ctx.live:
        z = ctx.node("Cast", [ins[2]], to=code)
    else:
        zt = helper.tensor_dtype_to_np_dtype(code)
        z = ctx.const(zp.data.astype(np.int64).astype(zt), "zero_point")
    s = ins[1]
    if a["axis"] is None and rec.inputs[1].ndim > 1:
        s = ctx.reshape(s, [])  # a per-tensor scale is a scalar or one-element 1-D tensor
    kw = {} if a["axis"] is None else {"axis": a["axis"]}
    if a["block_size"]:
        kw["block_size"] = a["block_size"]
    q = ctx.node("QuantizeLinear", [ins[0], s, z], **kw)
    return ctx.node("DequantizeLinear", [q, s, z], **kw)
