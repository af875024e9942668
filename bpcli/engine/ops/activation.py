"""Activation functions (PyTorch semantics, gradients at kinks included) and erf.

relu, tanh and sigmoid live in ``elementwise``. erf and the exact GELU run Numba kernels
(numpy has no erf); the rest are numpy expressions, which measured faster than fused Numba
loops here because numpy's exp/tanh are vectorised and a libm call in a Numba loop is not.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels import activation as K

__all__ = [
    "clamp",
    "clip",
    "elu",
    "erf",
    "gelu",
    "hardtanh",
    "leaky_relu",
    "relu6",
    "selu",
    "silu",
    "softplus",
]  # fmt: skip

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _floats(x: np.ndarray, opname: str) -> np.ndarray:
    if x.dtype not in (np.float32, np.float64):
        raise BpcliError(f"needs a float32 or float64 tensor, got {x.dtype}", opname)
    return x


def _flat(fn, *arrays: np.ndarray) -> np.ndarray:
    """Run a 1-d kernel on n-d arrays of one shape."""
    out = fn(*(np.ascontiguousarray(a).reshape(-1) for a in arrays))
    return out.reshape(arrays[0].shape)


class LeakyRelu(Op):
    """y = x if x > 0 else a x; dx = g if x > 0 else a g"""

    name, onnx, saves_inputs = "leaky_relu", "LeakyRelu", False

    def forward(self, x, alpha):
        _floats(x, self.name)
        a = x.dtype.type(alpha)
        self.pos = x > 0
        # NOTE: arithmetic, not np.where: np.where on a random mask is ~20x slower here.
        return np.maximum(x, 0) + a * np.minimum(x, 0)

    def backward(self, g):
        a = g.dtype.type(self.attrs["alpha"])
        return g * (a + (1 - a) * self.pos)


class Elu(Op):
    """y = s x if x > 0 else s a (exp(x) - 1); dx = s g if x > 0 else s a g exp(x)"""

    name, onnx, saves_inputs = "elu", "Elu", False
    scale = 1.0

    def forward(self, x, alpha=SELU_ALPHA):
        _floats(x, self.name)
        t = x.dtype.type
        self.pos = x > 0
        # expm1 only of the non-positive part (0 elsewhere): exp of a large x would overflow.
        self.n = np.expm1(np.minimum(x, 0))
        y = np.maximum(x, 0) + t(alpha) * self.n
        return y * t(self.scale) if self.scale != 1.0 else y

    def backward(self, g):
        t = g.dtype.type
        alpha = t(self.attrs.get("alpha", SELU_ALPHA))
        # a (n + 1) is a exp(x) for x <= 0 and a for x > 0, where the mask term makes it 1.
        d = alpha * (self.n + 1) + (1 - alpha) * self.pos
        return g * (d * t(self.scale)) if self.scale != 1.0 else g * d


class Selu(Elu):
    """y = 1.0507 elu(x, 1.6733); dx = as elu, times the scale"""

    name, onnx = "selu", "Selu"
    scale = SELU_SCALE


class Gelu(Op):
    """y = x Phi(x) (or its tanh fit); dx = g (Phi(x) + x phi(x)) (or the fit's derivative)"""

    name, onnx = "gelu", "Gelu"  # ONNX opset 20, attribute approximate='none'|'tanh'

    def forward(self, x, approximate):
        self.x = _floats(x, self.name)
        if approximate == "none":
            return _flat(K.gelu_fwd, x)
        t = x.dtype.type
        self.t = np.tanh(t(math.sqrt(2 / math.pi)) * (x + t(0.044715) * x * x * x))
        return t(0.5) * x * (1 + self.t)

    def backward(self, g):
        x = self.x
        t = x.dtype.type
        if self.attrs["approximate"] == "none":
            # numpy's exp is vectorised, a libm call inside the Numba loop is not (3x slower).
            return _flat(K.gelu_bwd, x, np.exp(x * x * t(-0.5)), g)
        th = self.t
        inner = t(math.sqrt(2 / math.pi)) * (1 + t(3 * 0.044715) * x * x)
        return g * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * inner)


class Silu(Op):
    """y = x s, s = sigmoid(x); dx = g s (1 + x (1 - s))"""

    name, onnx = "silu", None  # exported as Mul(x, Sigmoid(x))

    def forward(self, x):
        self.x = _floats(x, self.name)
        t = x.dtype.type
        self.s = t(0.5) * (1 + np.tanh(t(0.5) * x))  # sigmoid without exp overflow
        return x * self.s

    def backward(self, g):
        s = self.s
        return g * s * (1 + self.x * (1 - s))


class Softplus(Op):
    """y = log(1 + exp(b x)) / b, or x where b x > threshold; dx = g sigmoid(b x), or g"""

    # NOTE: ONNX Softplus has neither beta nor threshold: the exporter writes
    # Softplus(b x) / b; the threshold only changes results by < exp(-threshold).
    name, onnx, saves_inputs = "softplus", "Softplus", False

    def forward(self, x, beta, threshold):
        _floats(x, self.name)
        t = x.dtype.type
        bx = x * t(beta)
        self.linear = np.flatnonzero(bx > t(threshold))  # few: only large inputs
        self.z = np.exp(np.minimum(bx, t(threshold)))
        y = np.log1p(self.z) / t(beta)
        if self.linear.size:
            y.flat[self.linear] = x.flat[self.linear]
        return y

    def backward(self, g):
        z = self.z
        dx = g * z / (z + 1)
        if self.linear.size:
            dx.flat[self.linear] = g.flat[self.linear]
        return dx


class Clip(Op):
    """y = min(max(x, lo), hi); dx = g where lo <= x <= hi else 0 (as torch.clamp)"""

    name, onnx = "clip", "Clip"

    def forward(self, x, min, max):
        self.x = x
        return np.clip(x, min, max)

    def backward(self, g):
        lo, hi, x = self.attrs["min"], self.attrs["max"], self.x
        return g * self.inside(x, lo, hi)  # a mask product: np.where is ~20x slower

    @staticmethod
    def inside(x, lo, hi):
        if lo is None:
            return x <= hi
        if hi is None:
            return x >= lo
        return (x >= lo) & (x <= hi)


class Hardtanh(Clip):
    """y = min(max(x, lo), hi); dx = g where lo < x < hi else 0 (as torch.hardtanh)"""

    name, onnx = "hardtanh", "Clip"

    @staticmethod
    def inside(x, lo, hi):
        return (x > lo) & (x < hi)


class Erf(Op):
    """y = erf(x); dx = g 2 / sqrt(pi) exp(-x^2)"""

    name, onnx = "erf", "Erf"

    def forward(self, x):
        self.x = _floats(x, self.name)
        return _flat(K.erf_fwd, x)

    def backward(self, g):
        x = self.x
        return g * (x.dtype.type(2 / math.sqrt(math.pi)) * np.exp(-(x * x)))


# -- functional API -------------------------------------------------------------------------


def _number(v, what: str, opname: str) -> float:
    if isinstance(v, Tensor | np.ndarray) and np.ndim(v) == 0:
        v = v.item()
    if not isinstance(v, int | float | np.integer | np.floating) or isinstance(v, bool):
        raise BpcliError(f"{what} must be a number, got {type(v).__name__}", opname)
    return float(v)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return LeakyRelu.apply(lift(x), alpha=_number(negative_slope, "negative_slope", "leaky_relu"))


def elu(x, alpha: float = 1.0) -> Tensor:
    return Elu.apply(lift(x), alpha=_number(alpha, "alpha", "elu"))


def selu(x) -> Tensor:
    return Selu.apply(lift(x))


def gelu(x, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise BpcliError(f"approximate must be 'none' or 'tanh', got {approximate!r}", "gelu")
    return Gelu.apply(lift(x), approximate=approximate)


def silu(x) -> Tensor:
    return Silu.apply(lift(x))


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    beta = _number(beta, "beta", "softplus")
    if beta == 0:
        raise BpcliError("beta must not be 0", "softplus")
    return Softplus.apply(lift(x), beta=beta, threshold=_number(threshold, "threshold", "softplus"))


def clip(x, min=None, max=None) -> Tensor:
    """Clamp to [min, max] (either may be None), gradient passing where min <= x <= max.

    When min > max every element becomes max, as in torch and numpy. Bounds are numbers;
    for tensor bounds use ``maximum``/``minimum``.
    """
    if min is None and max is None:
        raise BpcliError("give min, max or both", "clip")
    lo = None if min is None else _number(min, "min", "clip")
    hi = None if max is None else _number(max, "max", "clip")
    x = lift(x)
    if x.dtype.kind in "iu":  # keep integer tensors integer when the bounds are whole
        lo = int(lo) if lo is not None and lo == int(lo) else lo
        hi = int(hi) if hi is not None and hi == int(hi) else hi
    return Clip.apply(x, min=lo, max=hi)


clamp = clip


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    lo, hi = _number(min_val, "min_val", "hardtanh"), _number(max_val, "max_val", "hardtanh")
    if lo > hi:
        raise BpcliError(f"min_val {lo} is larger than max_val {hi}", "hardtanh")
    return Hardtanh.apply(lift(x), min=lo, max=hi)


def relu6(x) -> Tensor:
    return hardtanh(x, 0.0, 6.0)


def erf(x) -> Tensor:
    return Erf.apply(lift(x))
