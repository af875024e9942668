"""Predicates (isnan, isinf, isfinite, isclose, allclose), logical ops and bitwise ops.

None has a gradient: every output is bool or integer. Bitwise ops take integer or bool
tensors only (bool works as logic, as in torch); shifts follow torch past the bit width
(``<<`` gives 0, ``>>`` gives 0 or -1) instead of numpy's undefined results.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.ops.math_binary import operands
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "allclose",
    "bitwise_and",
    "bitwise_left_shift",
    "bitwise_not",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
]  # fmt: skip


class _Predicate(Op):
    differentiable, saves_inputs = False, False
    ufunc = None

    def forward(self, *xs):
        return type(self).ufunc(*xs)


class IsNan(_Predicate):
    """z = x is nan (no gradient)"""

    name, onnx, ufunc = "isnan", "IsNaN", np.isnan


class IsInf(_Predicate):
    """z = x is +-inf (no gradient)"""

    name, onnx, ufunc = "isinf", "IsInf", np.isinf


class IsFinite(_Predicate):
    """z = x is neither nan nor +-inf (no gradient)"""

    name, onnx, ufunc = "isfinite", None, np.isfinite  # exported as Not(IsNaN or IsInf)


class LogicalAnd(_Predicate):
    """z = (a != 0) and (b != 0) (no gradient)"""

    name, onnx, ufunc = "logical_and", "And", np.logical_and


class LogicalOr(_Predicate):
    """z = (a != 0) or (b != 0) (no gradient)"""

    name, onnx, ufunc = "logical_or", "Or", np.logical_or


class LogicalXor(_Predicate):
    """z = (a != 0) xor (b != 0) (no gradient)"""

    name, onnx, ufunc = "logical_xor", "Xor", np.logical_xor


class LogicalNot(_Predicate):
    """z = x == 0 (no gradient)"""

    name, onnx, ufunc = "logical_not", "Not", np.logical_not


class BitwiseAnd(_Predicate):
    """z = a & b on integers/bools (no gradient)"""

    name, onnx, ufunc = "bitwise_and", "BitwiseAnd", np.bitwise_and


class BitwiseOr(_Predicate):
    """z = a | b on integers/bools (no gradient)"""

    name, onnx, ufunc = "bitwise_or", "BitwiseOr", np.bitwise_or


class BitwiseXor(_Predicate):
    """z = a ^ b on integers/bools (no gradient)"""

    name, onnx, ufunc = "bitwise_xor", "BitwiseXor", np.bitwise_xor


class BitwiseNot(_Predicate):
    """z = ~x on integers, not x on bools (no gradient)"""

    name, onnx, ufunc = "bitwise_not", "BitwiseNot", np.invert


class LeftShift(Op):
    """z = a << b, 0 once b reaches the bit width (as torch) (no gradient)"""

    name, onnx, differentiable, saves_inputs = "bitwise_left_shift", None, False, False

    def forward(self, a, b):
        bits = np.dtype(np.result_type(a, b)).itemsize * 8
        wide = (b >= bits) | (b < 0)
        z = np.left_shift(a, np.where(wide, 0, b).astype(b.dtype, copy=False))
        return np.where(wide, np.zeros((), z.dtype), z)


class RightShift(Op):
    """z = a >> b (arithmetic), the sign fill once b reaches the bit width (as torch)
    (no gradient)"""

    name, onnx, differentiable, saves_inputs = "bitwise_right_shift", None, False, False

    def forward(self, a, b):
        bits = np.dtype(np.result_type(a, b)).itemsize * 8
        wide = (b >= bits) | (b < 0)
        return np.right_shift(a, np.where(wide, bits - 1, b).astype(b.dtype, copy=False))


# -- functional API -------------------------------------------------------------------------


def isnan(input) -> Tensor:
    """torch.isnan (always False on integer tensors)."""
    return IsNan.apply(lift(input))


def isinf(input) -> Tensor:
    """torch.isinf (always False on integer tensors)."""
    return IsInf.apply(lift(input))


def isfinite(input) -> Tensor:
    """torch.isfinite (always True on integer tensors)."""
    return IsFinite.apply(lift(input))


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """torch.isclose: a == b, or |a - b| finite and <= atol + rtol |b| (nan == nan with
    ``equal_nan``); equal infinities are close, as in torch."""
    a, b = operands(input, other)
    if a.dtype != b.dtype:
        raise BpcliError(f"needs one dtype, got {a.dtype} and {b.dtype}", "isclose")
    if rtol < 0 or atol < 0:
        raise BpcliError(f"rtol and atol must be >= 0, got {rtol} and {atol}", "isclose")
    close = ew.eq(a, b)
    if a.dtype.kind == "b":
        return close
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    if a.dtype.kind in "iu":  # torch measures integer differences in float
        a, b = ew.astype(a, np.float64), ew.astype(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is nan: not close
        err = ew.abs(ew.sub(a, b))
        ok = ew.le(err, ew.add(ew.mul(ew.abs(b), float(rtol)), float(atol)))
    return logical_or(close, logical_and(isfinite(err), ok))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """torch.allclose: whether every element is ``isclose``, as a Python bool."""
    return bool(np.all(isclose(input, other, rtol, atol, equal_nan).numpy()))


def logical_and(input, other) -> Tensor:
    return LogicalAnd.apply(*operands(input, other))


def logical_or(input, other) -> Tensor:
    return LogicalOr.apply(*operands(input, other))


def logical_xor(input, other) -> Tensor:
    return LogicalXor.apply(*operands(input, other))


def logical_not(input) -> Tensor:
    return LogicalNot.apply(lift(input))


def _ints(opname: str, *ts: Tensor) -> None:
    for t in ts:
        if t.dtype.kind not in "biu":
            raise BpcliError(f"needs integer or bool tensors, got {t.dtype}", opname)


def _bitwise(cls, input, other) -> Tensor:
    a, b = operands(input, other)
    _ints(cls.name, a, b)
    return cls.apply(a, b)


def bitwise_and(input, other) -> Tensor:
    return _bitwise(BitwiseAnd, input, other)


def bitwise_or(input, other) -> Tensor:
    return _bitwise(BitwiseOr, input, other)


def bitwise_xor(input, other) -> Tensor:
    return _bitwise(BitwiseXor, input, other)


def bitwise_not(input) -> Tensor:
    x = lift(input)
    _ints("bitwise_not", x)
    return BitwiseNot.apply(x)


def _shift(cls, input, other) -> Tensor:
    a, b = operands(input, other)
    _ints(cls.name, a, b)
    # a bool operand shifts as int64, as torch's (True << 1 == 2)
    a = ew.astype(a, np.int64) if a.dtype.kind == "b" else a
    b = ew.astype(b, np.int64) if b.dtype.kind == "b" else b
    return cls.apply(a, b)


def bitwise_left_shift(input, other) -> Tensor:
    """torch.bitwise_left_shift (``<<``)."""
    return _shift(LeftShift, input, other)


def bitwise_right_shift(input, other) -> Tensor:
    """torch.bitwise_right_shift (``>>``): arithmetic on signed integers."""
    return _shift(RightShift, input, other)
