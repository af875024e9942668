"""Unary maths beyond ``elementwise``: inverse/hyperbolic trigonometry, log/exp variants,
reciprocal, and the rounding family (sign, floor, ceil, round, trunc, frac).

Dtype rules are torch's: the float functions turn an integer or bool input into float32; the
rounding functions keep an integer input as it is. Rounding has a zero gradient everywhere
(torch's choice, not "undefined"), frac passes it through.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "acos",
    "acosh",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctanh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "cosh",
    "exp2",
    "expm1",
    "fix",
    "floor",
    "frac",
    "log1p",
    "log2",
    "log10",
    "reciprocal",
    "round",
    "sign",
    "sinh",
    "square",
    "tan",
    "trunc",
]  # fmt: skip

LN2, LN10 = math.log(2.0), math.log(10.0)


class _Unary(Op):
    """Shared forward/backward: ``fn(x)`` and ``grad(g, x, y)`` of one float function."""

    saves_inputs = True

    def forward(self, x):
        self.x = x
        # out of the domain gives nan/inf silently, as torch (no numpy RuntimeWarning)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.y = type(self).fn(x)
        return self.y

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return type(self).grad(g, self.x, self.y)


class Tan(_Unary):
    """y = tan(x); dx = g (1 + y^2)"""

    name, onnx = "tan", "Tan"
    fn = staticmethod(np.tan)
    grad = staticmethod(lambda g, x, y: g * (1 + y * y))


class Asin(_Unary):
    """y = asin(x); dx = g / sqrt(1 - x^2)"""

    name, onnx = "asin", "Asin"
    fn = staticmethod(np.arcsin)
    grad = staticmethod(lambda g, x, y: g / np.sqrt(1 - x * x))


class Acos(_Unary):
    """y = acos(x); dx = -g / sqrt(1 - x^2)"""

    name, onnx = "acos", "Acos"
    fn = staticmethod(np.arccos)
    grad = staticmethod(lambda g, x, y: -g / np.sqrt(1 - x * x))


class Atan(_Unary):
    """y = atan(x); dx = g / (1 + x^2)"""

    name, onnx = "atan", "Atan"
    fn = staticmethod(np.arctan)
    grad = staticmethod(lambda g, x, y: g / (1 + x * x))


class Sinh(_Unary):
    """y = sinh(x); dx = g cosh(x)"""

    name, onnx = "sinh", "Sinh"
    fn = staticmethod(np.sinh)
    grad = staticmethod(lambda g, x, y: g * np.cosh(x))


class Cosh(_Unary):
    """y = cosh(x); dx = g sinh(x)"""

    name, onnx = "cosh", "Cosh"
    fn = staticmethod(np.cosh)
    grad = staticmethod(lambda g, x, y: g * np.sinh(x))


class Asinh(_Unary):
    """y = asinh(x); dx = g / sqrt(x^2 + 1)"""

    name, onnx = "asinh", "Asinh"
    fn = staticmethod(np.arcsinh)
    grad = staticmethod(lambda g, x, y: g / np.sqrt(x * x + 1))


class Acosh(_Unary):
    """y = acosh(x); dx = g / sqrt(x^2 - 1)"""

    name, onnx = "acosh", "Acosh"
    fn = staticmethod(np.arccosh)
    grad = staticmethod(lambda g, x, y: g / np.sqrt(x * x - 1))


class Atanh(_Unary):
    """y = atanh(x); dx = g / (1 - x^2)"""

    name, onnx = "atanh", "Atanh"
    fn = staticmethod(np.arctanh)
    grad = staticmethod(lambda g, x, y: g / (1 - x * x))


class Log2(_Unary):
    """y = log2(x); dx = g / (x ln 2)"""

    name, onnx = "log2", None  # exported as Log(x) / ln 2
    fn = staticmethod(np.log2)
    grad = staticmethod(lambda g, x, y: g / (x * x.dtype.type(LN2)))


class Log10(_Unary):
    """y = log10(x); dx = g / (x ln 10)"""

    name, onnx = "log10", None  # exported as Log(x) / ln 10
    fn = staticmethod(np.log10)
    grad = staticmethod(lambda g, x, y: g / (x * x.dtype.type(LN10)))


class Log1p(_Unary):
    """y = log(1 + x), exact for small x; dx = g / (1 + x)"""

    name, onnx = "log1p", None  # exported as Log(1 + x)
    fn = staticmethod(np.log1p)
    grad = staticmethod(lambda g, x, y: g / (x + 1))


class Expm1(_Unary):
    """y = exp(x) - 1, exact for small x; dx = g (y + 1)"""

    name, onnx = "expm1", None  # exported as Exp(x) - 1
    fn = staticmethod(np.expm1)
    grad = staticmethod(lambda g, x, y: g * (y + 1))


class Exp2(_Unary):
    """y = 2^x; dx = g y ln 2"""

    name, onnx = "exp2", None  # exported as Pow(2, x)
    fn = staticmethod(np.exp2)
    grad = staticmethod(lambda g, x, y: g * y * y.dtype.type(LN2))


class Reciprocal(_Unary):
    """y = 1 / x; dx = -g y^2"""

    name, onnx = "reciprocal", "Reciprocal"
    fn = staticmethod(np.reciprocal)
    grad = staticmethod(lambda g, x, y: -g * (y * y))


def _zero_grad(g, x, y):
    return np.zeros_like(g)


def _sign(x):
    # torch's (x > 0) - (x < 0): 0 at nan, where np.sign gives nan
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


class Sign(_Unary):
    """y = sign(x) (0 at 0 and at nan, as torch); dx = 0"""

    name, onnx, saves_inputs = "sign", "Sign", False
    fn, grad = staticmethod(_sign), staticmethod(_zero_grad)


class Floor(_Unary):
    """y = floor(x); dx = 0"""

    name, onnx, saves_inputs = "floor", "Floor", False
    fn, grad = staticmethod(np.floor), staticmethod(_zero_grad)


class Ceil(_Unary):
    """y = ceil(x); dx = 0"""

    name, onnx, saves_inputs = "ceil", "Ceil", False
    fn, grad = staticmethod(np.ceil), staticmethod(_zero_grad)


class Trunc(_Unary):
    """y = trunc(x) (towards 0); dx = 0"""

    name, onnx, saves_inputs = "trunc", None, False  # exported as Sign(x) Floor(|x|)
    fn, grad = staticmethod(np.trunc), staticmethod(_zero_grad)


class Round(Op):
    """y = x rounded half to even at ``decimals`` places; dx = 0"""

    name, onnx, saves_inputs = "round", "Round", False

    def forward(self, x, decimals):
        # np.round scales by 10^d (or divides by 10^-d) then rounds half to even, as torch does
        return np.round(x, decimals)

    def backward(self, g):
        return np.zeros_like(g)


class Frac(_Unary):
    """y = x - trunc(x); dx = g"""

    name, onnx, saves_inputs = "frac", None, False  # exported as x - Sign(x) Floor(|x|)
    fn = staticmethod(lambda x: x - np.trunc(x))
    grad = staticmethod(lambda g, x, y: g)


# -- functional API -------------------------------------------------------------------------


def to_float(x, opname: str) -> Tensor:
    """``x`` as a float tensor: an integer/bool one becomes float32, as torch's float ops do."""
    x = lift(x)
    if x.dtype.kind in "fc":
        return x
    if x.dtype.kind not in "biu":
        raise BpcliError(f"needs a numeric tensor, got {x.dtype}", opname)
    return ew.astype(x, np.float32)


def _float_fn(cls):
    def fn(input) -> Tensor:
        return cls.apply(to_float(input, cls.name))

    fn.__name__ = fn.__qualname__ = cls.name
    fn.__doc__ = f"torch.{cls.name}: {cls.__doc__}"
    return fn


tan, asin, acos, atan = (_float_fn(c) for c in (Tan, Asin, Acos, Atan))
sinh, cosh, asinh, acosh, atanh = (_float_fn(c) for c in (Sinh, Cosh, Asinh, Acosh, Atanh))
log2, log10, log1p = (_float_fn(c) for c in (Log2, Log10, Log1p))
expm1, exp2, reciprocal = (_float_fn(c) for c in (Expm1, Exp2, Reciprocal))
# numpy's spellings, as torch.arcsin & co.
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def _rounding(x, cls) -> Tensor:
    x = lift(x)
    if cls is Sign and x.dtype.kind in "iu":
        return Sign.apply(x)
    if x.dtype.kind in "iub":  # whole already: torch returns the values unchanged, same dtype
        if x.dtype.kind == "b" and cls is not Sign:
            raise BpcliError("is not defined for bool tensors", cls.name)
        return ew.clone(x)
    return cls.apply(x)


def sign(input) -> Tensor:
    """torch.sign: -1, 0 or 1 (nan stays nan); a bool or integer tensor keeps its dtype."""
    return _rounding(input, Sign)


def floor(input) -> Tensor:
    """torch.floor; an integer tensor is returned unchanged."""
    return _rounding(input, Floor)


def ceil(input) -> Tensor:
    """torch.ceil; an integer tensor is returned unchanged."""
    return _rounding(input, Ceil)


def trunc(input) -> Tensor:
    """torch.trunc (round towards zero); an integer tensor is returned unchanged."""
    return _rounding(input, Trunc)


fix = trunc


def round(input, *, decimals: int = 0) -> Tensor:  # noqa: A001 - torch.round
    """torch.round: half to even, at ``decimals`` places (negative: tens, hundreds, ...)."""
    if not isinstance(decimals, int | np.integer) or isinstance(decimals, bool):
        raise BpcliError(f"decimals must be an int, got {decimals!r}", "round")
    x = lift(input)
    if x.dtype.kind in "iub":
        if decimals != 0:
            raise BpcliError("decimals != 0 needs a float tensor (as torch)", "round")
        return _rounding(x, Round)
    return Round.apply(x, decimals=int(decimals))


def frac(input) -> Tensor:
    """torch.frac: x - trunc(x), the sign of x kept; float tensors only (as torch)."""
    x = lift(input)
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float tensor, got {x.dtype}", "frac")
    return Frac.apply(x)


def square(input) -> Tensor:
    """torch.square: x * x (an integer tensor stays integer; bool becomes int64)."""
    x = lift(input)
    if x.dtype.kind == "b":
        x = ew.astype(x, np.int64)
    return ew.mul(x, x)
