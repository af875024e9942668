"""Binds the functional API onto Tensor as methods and operators, in this one place.

``bpcli.functional`` calls ``bind`` with itself once all its functions are defined, so this
module, below it, never imports it (that was a circle functional -> methods -> functional).
"""

from __future__ import annotations

from bpcli.engine import grad_mode
from bpcli.engine.convert import lift
from bpcli.engine.inplace import apply_inplace
from bpcli.engine.op import observers as op_observers
from bpcli.engine.ops.index import setitem
from bpcli.engine.ops.setitem import index_assign
from bpcli.engine.tensor import Tensor


def _setitem(self, index, value) -> None:
    """``x[index] = value`` with PyTorch's indexing rules; bumps the version counter. While a
    graph is recorded and ``self`` or ``value`` is in it, the write is an op of the graph."""
    value_grad = isinstance(value, Tensor) and value._requires_grad
    # recorded (or traced, for the ONNX exporter) as an op; else a plain write of the array
    if (grad_mode.enabled and (self._requires_grad or value_grad)) or op_observers:
        apply_inplace(self, "__setitem__", lambda s, v: index_assign(s, index, v), lift(value))
        return
    self._mark_inplace("__setitem__")
    setitem(self._data, index, value._data if isinstance(value, Tensor) else value)

# Methods named as in numpy/PyTorch; each is the functional op of the same name.
METHOD_NAMES = (
    "add", "sub", "mul", "div", "neg", "pow", "maximum", "minimum", "abs", "exp", "log",
    "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "selu",
    "gelu", "silu", "softplus", "clip", "erf", "astype", "clone",
    "sum", "mean", "var", "max", "min", "logsumexp", "norm", "argmax", "argmin",
    "reshape", "flatten", "transpose", "permute", "swapaxes", "squeeze", "unsqueeze",
    "expand", "split", "chunk", "repeat", "tile", "gather", "index_add", "cumsum", "cumprod",
    "topk",
    "matmul", "softmax", "log_softmax",
    "eq", "ne", "lt", "le", "gt", "ge",
    "amax", "amin", "repeat_interleave", "t", "swapdims",
    "std", "prod", "any", "all", "count_nonzero", "nansum", "nanmean",
    "cummax", "cummin", "logcumsumexp", "sort", "argsort", "msort", "kthvalue", "median", "mode",
    "nonzero", "masked_select", "take", "take_along_dim",
    "masked_fill", "masked_scatter", "scatter", "scatter_add", "scatter_reduce", "index_put",
    "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh", "asinh",
    "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "log2", "log10", "log1p", "expm1",
    "exp2", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc", "fix", "frac",
    "atan2", "arctan2", "copysign", "logaddexp", "hypot", "fmod", "remainder", "divide",
    "floor_divide", "lerp", "isnan", "isinf", "isfinite", "isclose", "allclose",
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "prelu",
    "mm", "bmm", "mv", "dot", "vdot", "outer", "addmm", "addmv", "baddbmm", "cross",
    "view", "view_as", "reshape_as", "expand_as", "flip", "fliplr", "flipud", "roll", "rot90",
    "unflatten", "narrow", "movedim", "moveaxis", "diag", "diagonal", "diag_embed", "tril",
    "triu", "broadcast_to", "clamp",
)  # fmt: skip


def _reflected(fn):
    return lambda self, other: fn(other, self)


def bind(F) -> list[str]:  # noqa: N803  (F, as the functional module is called everywhere)
    """Attach every method and operator of ``F`` (the functional module); returns the names
    it lacks."""
    missing = []
    for name in METHOD_NAMES:
        fn = getattr(F, name, None)
        if fn is None:
            missing.append(name)
        else:
            setattr(Tensor, name, fn)
    ops = {
        "__add__": F.add, "__sub__": F.sub, "__mul__": F.mul, "__truediv__": F.div,
        "__pow__": F.pow, "__eq__": F.eq, "__ne__": F.ne, "__lt__": F.lt, "__le__": F.le,
        "__gt__": F.gt, "__ge__": F.ge, "__neg__": F.neg, "__abs__": F.abs,
    }  # fmt: skip
    for dunder, fn in ops.items():
        setattr(Tensor, dunder, fn)
    for dunder, fn in {"__radd__": F.add, "__rsub__": F.sub, "__rmul__": F.mul,
                       "__rtruediv__": F.div, "__rpow__": F.pow}.items():  # fmt: skip
        setattr(Tensor, dunder, _reflected(fn))
    if hasattr(F, "matmul"):
        Tensor.__matmul__ = F.matmul
        Tensor.__rmatmul__ = _reflected(F.matmul)
    Tensor.__setitem__ = _setitem
    if hasattr(F, "getitem"):
        Tensor.__getitem__ = F.getitem
    if hasattr(F, "transpose"):
        Tensor.T = property(lambda self: F.reverse_dims(self))
        Tensor.mT = property(lambda self: F.mT(self))
    Tensor.float = lambda self: F.astype(self, "float32")
    Tensor.double = lambda self: F.astype(self, "float64")
    # torch's %, //, bitwise operators (math_binary.py, logic.py)
    Tensor.__invert__ = F.bitwise_not
    for dunder, fn in {"__mod__": F.remainder, "__floordiv__": F.floor_divide,
                       "__and__": F.bitwise_and, "__or__": F.bitwise_or,
                       "__xor__": F.bitwise_xor, "__lshift__": F.bitwise_left_shift,
                       "__rshift__": F.bitwise_right_shift}.items():  # fmt: skip
        setattr(Tensor, dunder, fn)
    for dunder, fn in {"__rmod__": F.remainder, "__rfloordiv__": F.floor_divide,
                       "__rand__": F.bitwise_and, "__ror__": F.bitwise_or,
                       "__rxor__": F.bitwise_xor, "__rlshift__": F.bitwise_left_shift,
                       "__rrshift__": F.bitwise_right_shift}.items():  # fmt: skip
        setattr(Tensor, dunder, _reflected(fn))
    return missing
