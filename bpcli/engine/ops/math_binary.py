"""Binary maths beyond ``elementwise``: atan2, copysign, logaddexp, hypot, fmod, remainder,
rounded division (``div(rounding_mode=...)``, ``//``) and lerp.

Gradients are torch's (``derivatives.yaml``): fmod/remainder pass ``g`` to the dividend and
``-g * trunc|floor(a / b)`` to the divisor; rounded division and copysign's sign source get
a zero gradient. Integer division by zero is an error, as in torch.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift, pair
from bpcli.engine.op import Op, same_float
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.ops.math import to_float
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "arctan2",
    "atan2",
    "copysign",
    "div",
    "divide",
    "floor_divide",
    "fmod",
    "hypot",
    "lerp",
    "logaddexp",
    "remainder",
]  # fmt: skip


def operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as tensors; a Python int next to an integer tensor takes its dtype (torch
    does not widen an int32 tensor for a scalar), otherwise as ``pair``."""
    if isinstance(a, Tensor) and a.dtype.kind in "iu" and _pyint(b):
        return a, lift(np.asarray(b, dtype=a.dtype))
    if isinstance(b, Tensor) and b.dtype.kind in "iu" and _pyint(a):
        return lift(np.asarray(a, dtype=b.dtype)), b
    return pair(a, b)


def _pyint(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _float_pair(a, b, opname: str) -> tuple[Tensor, Tensor]:
    a, b = operands(a, b)
    return to_float(a, opname), to_float(b, opname)


def _no_int_zero(a: np.ndarray, b: np.ndarray, opname: str) -> None:
    if a.dtype.kind in "iub" and b.dtype.kind in "iub" and not np.all(b):
        raise BpcliError("integer division by zero", opname)


class Atan2(Op):
    """z = atan2(a, b); da = g b / (a^2 + b^2), db = -g a / (a^2 + b^2)"""

    name, onnx = "atan2", None  # exported through Atan and Where on the quadrants

    def forward(self, a, b):
        self.a, self.b = same_float(self.name, a, b)
        return np.arctan2(self.a, self.b)

    def backward(self, g):
        a, b = self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            s = g / (a * a + b * b)
        return (s * b if self.needs[0] else None, -s * a if self.needs[1] else None)


class Copysign(Op):
    """z = |a| sign(b) (signed zeros count); da = g z / a (0 where a = 0), db = 0"""

    name, onnx = "copysign", None  # exported as Where(b's sign bit, -|a|, |a|)

    def forward(self, a, b):
        self.a, b = same_float(self.name, a, b)
        self.z = np.copysign(self.a, b)
        return self.z

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            da = np.where(self.a == 0, g.dtype.type(0), g * (self.z / self.a))
        return da if self.needs[0] else None, np.zeros_like(g) if self.needs[1] else None


class Logaddexp(Op):
    """z = log(exp(a) + exp(b)), without overflow; da = g / (1 + exp(b - a)), db = g / (1 +
    exp(a - b))"""

    name, onnx = "logaddexp", None  # exported as Max + Log(1 + Exp(-|a - b|))

    def forward(self, a, b):
        self.a, self.b = same_float(self.name, a, b)
        return np.logaddexp(self.a, self.b)

    def backward(self, g):
        a, b = self.a, self.b
        with np.errstate(over="ignore", invalid="ignore"):
            return (
                g / (1 + np.exp(b - a)) if self.needs[0] else None,
                g / (1 + np.exp(a - b)) if self.needs[1] else None,
            )


class Hypot(Op):
    """z = sqrt(a^2 + b^2), without overflow; da = g a / z, db = g b / z"""

    name, onnx = "hypot", None  # exported as Sqrt(a a + b b)

    def forward(self, a, b):
        self.a, self.b = same_float(self.name, a, b)
        self.z = np.hypot(self.a, self.b)
        return self.z

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            s = g / self.z
        return (s * self.a if self.needs[0] else None, s * self.b if self.needs[1] else None)


class Fmod(Op):
    """z = a - b trunc(a / b) (sign of a, C's fmod); da = g, db = -g trunc(a / b)"""

    name, onnx = "fmod", None  # exported as Mod(fmod=1)

    def forward(self, a, b):
        self.a, self.b = same_float(self.name, a, b)
        _no_int_zero(self.a, self.b, self.name)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.fmod(self.a, self.b)

    def backward(self, g):
        gb = None
        if self.needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = -g * np.trunc(self.a / self.b)
        return g, gb


class Remainder(Op):
    """z = a - b floor(a / b) (sign of b, Python's %); da = g, db = -g floor(a / b)"""

    name, onnx = "remainder", None  # exported as a - b Floor(a / b), or Mod for integers

    def forward(self, a, b):
        self.a, self.b = same_float(self.name, a, b)
        _no_int_zero(self.a, self.b, self.name)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.remainder(self.a, self.b)

    def backward(self, g):
        gb = None
        if self.needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = -g * np.floor_divide(self.a, self.b)
        return g, gb


class RoundedDiv(Op):
    """z = trunc(a / b) or floor(a / b) (``mode``), exact on integers; da = 0, db = 0"""

    name, onnx = "rounded_div", None  # exported as Div then Floor, or Div on integers

    def forward(self, a, b, mode):
        a, b = same_float(self.name, a, b)
        _no_int_zero(a, b, self.name)
        with np.errstate(divide="ignore", invalid="ignore"):
            if a.dtype.kind == "f":
                # numpy's floor_divide is torch's algorithm (fmod-based, exact halves)
                return np.trunc(a / b) if mode == "trunc" else np.floor_divide(a, b)
            q = np.floor_divide(a, b)
            if mode == "trunc":  # floor rounds the negative quotients one too low
                q = q + ((q * b != a) & ((a < 0) != (b < 0))).astype(q.dtype)
            return q

    def backward(self, g):
        return tuple(np.zeros_like(g) if n else None for n in self.needs)


class Lerp(Op):
    """z = a + w (b - a) (as b - (b - a)(1 - w) where w >= 0.5, as torch);
    da = g (1 - w), db = g w, dw = g (b - a)"""

    name, onnx = "lerp", None  # exported as a + w (b - a)

    def forward(self, a, b, w):
        if not (a.dtype == b.dtype == w.dtype):
            raise BpcliError(
                f"start, end and weight need one float dtype, got {a.dtype}, {b.dtype}, {w.dtype}",
                self.name,
            )
        self.d, self.w = b - a, w
        # torch's two-sided form: exact at both w = 0 and w = 1
        return np.where(np.abs(w) < 0.5, a + w * self.d, b - self.d * (1 - w))

    def backward(self, g):
        w = self.w
        return (
            g * (1 - w) if self.needs[0] else None,
            g * w if self.needs[1] else None,
            g * self.d if self.needs[2] else None,
        )


# -- functional API -------------------------------------------------------------------------


def atan2(input, other) -> Tensor:
    """torch.atan2: the angle of (other, input) in (-pi, pi]."""
    return Atan2.apply(*_float_pair(input, other, "atan2"))


arctan2 = atan2


def copysign(input, other) -> Tensor:
    """torch.copysign: |input| with the sign of other (-0.0 counts as negative)."""
    return Copysign.apply(*_float_pair(input, other, "copysign"))


def logaddexp(input, other) -> Tensor:
    """torch.logaddexp: log(exp(input) + exp(other)) without overflow."""
    return Logaddexp.apply(*_float_pair(input, other, "logaddexp"))


def hypot(input, other) -> Tensor:
    """torch.hypot: sqrt(input^2 + other^2) without overflow; float tensors only."""
    a, b = operands(input, other)
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        raise BpcliError(f"needs float tensors, got {a.dtype} and {b.dtype}", "hypot")
    return Hypot.apply(a, b)


def _mod_args(input, other, opname):
    a, b = operands(input, other)
    for t in (a, b):
        if t.dtype.kind not in "fiu":
            raise BpcliError(f"needs integer or float tensors, got {t.dtype}", opname)
    return a, b


def fmod(input, other) -> Tensor:
    """torch.fmod: remainder of truncated division, with the dividend's sign."""
    return Fmod.apply(*_mod_args(input, other, "fmod"))


def remainder(input, other) -> Tensor:
    """torch.remainder (``%``): remainder of floored division, with the divisor's sign."""
    return Remainder.apply(*_mod_args(input, other, "remainder"))


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """torch.div: true division, or rounded with ``rounding_mode='trunc'|'floor'`` (integers
    stay integers then; the rounded quotient has a zero gradient)."""
    if rounding_mode is None:
        return ew.div(input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise BpcliError(
            f"rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}", "div"
        )
    a, b = operands(input, other)
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        raise BpcliError("rounded division of two bool tensors is not defined", "div")
    return RoundedDiv.apply(a, b, mode=rounding_mode)


divide = div


def floor_divide(input, other) -> Tensor:
    """torch.floor_divide (``//``): floor(input / other)."""
    return div(input, other, rounding_mode="floor")


def lerp(input, end, weight) -> Tensor:
    """torch.lerp: input + weight (end - input); weight a number or a tensor."""
    a, b = pair(input, end)
    if a.dtype.kind != "f":
        raise BpcliError(f"needs float tensors, got {a.dtype}", "lerp")
    w = lift(weight, a)
    return Lerp.apply(a, b, w)
