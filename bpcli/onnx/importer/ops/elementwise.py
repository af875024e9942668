"""Import of elementwise math, activations, comparisons and logic.

Integer and boolean values never need a gradient, so where no input does the op runs on plain
numpy (this keeps ONNX's integer semantics, which the float engine ops do not have).
"""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.table import NodeView, register, scalar, wrap


def grad(*ts) -> bool:
    return any(t is not None and t.requires_grad for t in ts)


# -- binary arithmetic ---------------------------------------------------------------------


def _int_div(a, b):
    if a.dtype.kind in "iu":
        # ONNX integer Div truncates toward zero (C semantics), numpy's // floors.
        return (np.trunc(a / b)).astype(a.dtype)
    return (a / b).astype(a.dtype)


def _pow(a, b):
    return np.power(a, b.astype(a.dtype) if a.dtype.kind == "f" else b).astype(a.dtype)


_BINARY = {
    "Add": (F.add, np.add),
    "Sub": (F.sub, np.subtract),
    "Mul": (F.mul, np.multiply),
    "Div": (F.div, _int_div),
    "Pow": (F.pow, _pow),
}


@register(*_BINARY, since=7)
def binary(ctx, node: NodeView, inputs):
    a, b = inputs
    engine_fn, np_fn = _BINARY[node.op_type]
    if not grad(a, b):
        return wrap(np.asarray(np_fn(a.data, b.data)).astype(a.dtype, copy=False))
    if node.op_type == "Pow" and b.dtype != a.dtype:
        b = F.astype(b, a.dtype)
    return engine_fn(a, b)


@register("Mod", since=10)
def mod(ctx, node, inputs):
    a, b = inputs
    fmod = node.attr("fmod", 0)
    if not grad(a, b):
        out = np.fmod(a.data, b.data) if fmod else np.mod(a.data, b.data)
        return wrap(out.astype(a.dtype))
    # a mod b = a - b * k with k = floor(a / b) (or trunc for fmod) piecewise constant; the
    # forward takes numpy's exact value (inf/nan edge cases), the composition the gradient.
    q = a.data / b.data
    k = wrap((np.trunc(q) if fmod else np.floor(q)).astype(a.dtype))
    y = F.sub(a, F.mul(b, k))
    exact = np.fmod(a.data, b.data) if fmod else np.mod(a.data, b.data)
    ok = np.isfinite(y.data)
    y = F.where(ok, y, wrap(np.zeros((), a.dtype)))
    return F.add(y, wrap(np.where(ok, exact - y.data, exact).astype(a.dtype)))


def _variadic(engine_fn, np_fn):
    def fn(ctx, node, inputs):
        xs = [x for x in inputs if x is not None]
        if not grad(*xs):
            out = xs[0].data
            for x in xs[1:]:
                out = np_fn(out, x.data)
            return wrap(np.asarray(out).astype(xs[0].dtype, copy=False))
        out = xs[0]
        for x in xs[1:]:
            out = engine_fn(out, x)
        return out

    return fn


register("Sum", since=6)(_variadic(F.add, np.add))
register("Max", since=6)(_variadic(F.maximum, np.maximum))
register("Min", since=6)(_variadic(F.minimum, np.minimum))


@register("Mean", since=6)
def mean(ctx, node, inputs):
    s = _variadic(F.add, np.add)(ctx, node, inputs)
    n = len([x for x in inputs if x is not None])
    return F.div(s, n) if s.requires_grad else wrap((s.data / n).astype(s.dtype))


# -- unary: engine primitives or short compositions of them ---------------------------------


def _softsign(x):
    return F.div(x, F.add(F.abs(x), 1.0))


def _mish(x):
    return F.mul(x, F.tanh(F.softplus(x)))


_UNARY = {
    "Relu": (F.relu, lambda a: np.maximum(a, 0).astype(a.dtype)),
    "Tanh": (F.tanh, np.tanh),
    "Sigmoid": (F.sigmoid, lambda a: (1 / (1 + np.exp(-a))).astype(a.dtype)),
    "Exp": (F.exp, np.exp),
    "Log": (F.log, np.log),
    "Sqrt": (F.sqrt, np.sqrt),
    "Neg": (F.neg, np.negative),
    "Abs": (F.abs, np.abs),
    "Erf": (F.erf, None),
    "Sin": (F.sin, np.sin),
    "Cos": (F.cos, np.cos),
    "Tan": (lambda x: F.div(F.sin(x), F.cos(x)), np.tan),
    "Sinh": (lambda x: F.mul(F.sub(F.exp(x), F.exp(F.neg(x))), 0.5), np.sinh),
    "Cosh": (lambda x: F.mul(F.add(F.exp(x), F.exp(F.neg(x))), 0.5), np.cosh),
    "Asinh": (lambda x: F.log(F.add(x, F.sqrt(F.add(F.mul(x, x), 1.0)))), np.arcsinh),
    "Acosh": (lambda x: F.log(F.add(x, F.sqrt(F.sub(F.mul(x, x), 1.0)))), np.arccosh),
    "Atanh": (lambda x: F.mul(F.log(F.div(F.add(x, 1.0), F.sub(1.0, x))), 0.5), np.arctanh),
    "Reciprocal": (lambda x: F.div(1.0, x), lambda a: (1 / a).astype(a.dtype)),
    "Softplus": (F.softplus, None),
    "Softsign": (_softsign, None),
    "Mish": (_mish, None),
    "Identity": (lambda x: x, lambda a: a),
}

# No engine primitive: forward only (the gradient stops here; reported in the summary).
_NOGRAD_UNARY = {
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,
    "Sign": np.sign,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Not": np.logical_not,
    "IsNaN": np.isnan,
    "BitwiseNot": np.invert,
}


@register(*_UNARY)
def unary(ctx, node, inputs):
    (x,) = inputs[:1]
    if node.op_type == "Identity" and not isinstance(x, Tensor):
        return (x,)  # a sequence (list) or an absent optional (None) passes through as is
    engine_fn, np_fn = _UNARY[node.op_type]
    if grad(x) or np_fn is None:
        return engine_fn(x)
    out = np.asarray(np_fn(x.data))
    return wrap(out.astype(x.dtype, copy=False))


@register(*_NOGRAD_UNARY)
def unary_nograd(ctx, node, inputs):
    (x,) = inputs
    out = np.asarray(_NOGRAD_UNARY[node.op_type](x.data))
    if grad(x):
        ctx.module._note_nograd(node)
    return wrap(out if out.dtype == bool else out.astype(x.dtype, copy=False))


@register("IsInf", since=10)
def isinf(ctx, node, inputs):
    x = inputs[0].data
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    return wrap(np.isinf(x) & (((x > 0) & bool(pos)) | ((x < 0) & bool(neg))))


# -- activations with attributes -------------------------------------------------------------


@register("LeakyRelu", since=6)
def leaky_relu(ctx, node, inputs):
    return F.leaky_relu(inputs[0], node.attr("alpha", 0.01))


@register("Elu", since=6)
def elu(ctx, node, inputs):
    return F.elu(inputs[0], node.attr("alpha", 1.0))


@register("Celu", since=12)
def celu(ctx, node, inputs):
    a = node.attr("alpha", 1.0)
    return F.mul(F.elu(F.div(inputs[0], a), 1.0), a)


@register("Selu", since=6)
def selu(ctx, node, inputs):
    a, g = (
        node.attr("alpha", 1.67326319217681884765625),
        node.attr("gamma", 1.05070102214813232421875),
    )
    return F.mul(F.elu(inputs[0], a), g)


@register("ThresholdedRelu", since=10)
def thresholded_relu(ctx, node, inputs):
    x = inputs[0]
    return F.mul(x, wrap((x.data > node.attr("alpha", 1.0)).astype(x.dtype)))


@register("HardSigmoid", since=6)
def hard_sigmoid(ctx, node, inputs):
    x = inputs[0]
    y = F.add(F.mul(x, node.attr("alpha", 0.2)), node.attr("beta", 0.5))
    return F.clip(y, 0.0, 1.0)


@register("HardSwish", since=14)
def hard_swish(ctx, node, inputs):
    x = inputs[0]
    return F.mul(x, F.clip(F.add(F.mul(x, 1.0 / 6.0), 0.5), 0.0, 1.0))


@register("PRelu", since=7)
def prelu(ctx, node, inputs):
    x, slope = inputs
    if slope.ndim == 1 and x.ndim > 2 and slope.numel() == x.shape[1] and slope.numel() != x.shape[-1]:
        slope = F.reshape(slope, (-1,) + (1,) * (x.ndim - 2))  # opset < 7: one slope per channel
    neg = wrap(x.data < 0)
    return F.where(neg, F.mul(x, slope), x)


@register("Gelu", since=20)
def gelu(ctx, node, inputs):
    return F.gelu(inputs[0], node.attr("approximate", "none"))


@register("Clip", since=6)
def clip(ctx, node, inputs):
    x = inputs[0]
    if node.opset < 11:
        lo, hi = node.attr("min", -math.inf), node.attr("max", math.inf)
    else:
        lo = scalar(inputs[1] if len(inputs) > 1 else None)
        hi = scalar(inputs[2] if len(inputs) > 2 else None)
    if not grad(x):
        out = x.data
        if lo is not None:
            out = np.maximum(out, lo)
        if hi is not None:
            out = np.minimum(out, hi)
        return wrap(np.asarray(out).astype(x.dtype))
    lo = None if lo is None or lo == -math.inf else float(lo)
    hi = None if hi is None or hi == math.inf else float(hi)
    if lo is not None and hi is not None and lo > hi:
        return F.mul(x, 0.0) + hi  # ONNX: min > max sets everything to max
    return x if lo is None and hi is None else F.clip(x, lo, hi)


# -- comparisons and logic: never differentiable ----------------------------------------------

_COMPARE = {
    "Equal": np.equal,
    "Greater": np.greater,
    "Less": np.less,
    "GreaterOrEqual": np.greater_equal,
    "LessOrEqual": np.less_equal,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
    "BitwiseAnd": np.bitwise_and,
    "BitwiseOr": np.bitwise_or,
    "BitwiseXor": np.bitwise_xor,
}


@register(*_COMPARE, since=7)
def compare(ctx, node, inputs):
    a, b = inputs
    return wrap(_COMPARE[node.op_type](a.data, b.data))


@register("BitShift", since=11)
def bitshift(ctx, node, inputs):
    a, b = inputs
    fn = np.left_shift if node.attr("direction") == "LEFT" else np.right_shift
    return wrap(fn(a.data, b.data))


@register("Where", since=9)
def where(ctx, node, inputs):
    c, a, b = inputs
    if not grad(a, b):
        return wrap(np.where(c.data, a.data, b.data))
    return F.where(c.data.astype(bool), a, b)
