"""Binds the functional API onto Tensor as methods and operators, in this one place."""

from __future__ import annotations

from bpcli import functional as F
from bpcli.engine.tensor import Tensor

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
    "view", "view_as", "reshape_as", "expand_as", "flip", "fliplr", "flipud", "roll", "rot90",
    "unflatten", "narrow", "movedim", "moveaxis", "diag", "diagonal", "diag_embed", "tril",
    "triu", "broadcast_to", "clamp",
)  # fmt: skip


def _reflected(fn):
    return lambda self, other: fn(other, self)


def bind() -> list[str]:
    """Attach every method and operator; returns the names the functional API lacks."""
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
    if hasattr(F, "getitem"):
        Tensor.__getitem__ = F.getitem
    if hasattr(F, "transpose"):
        Tensor.T = property(lambda self: F.transpose(self))
    Tensor.float = lambda self: F.astype(self, "float32")
    Tensor.double = lambda self: F.astype(self, "float64")
    return missing


MISSING = bind()
