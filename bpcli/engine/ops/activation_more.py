"""More activations, as ``torch.nn.functional``: celu, logsigmoid, hardsigmoid, hardswish,
mish, softsign, softmin, prelu, glu, and ``normalize``.

logsigmoid and hardswish are primitives: logsigmoid so that large inputs keep torch's
precision (log1p, not log(1 + tiny)), hardswish so the gradient at the kinks x = +-3 is
torch's. The others are composites of existing ops, whose gradients match torch's already.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops import activation as act
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.ops import reduce as rd
from bpcli.engine.ops.activation import _floats, _number
from bpcli.engine.ops.join import split
from bpcli.engine.ops.nn import softmax
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "celu",
    "glu",
    "hardsigmoid",
    "hardswish",
    "logsigmoid",
    "mish",
    "normalize",
    "prelu",
    "softmin",
    "softsign",
]  # fmt: skip


class Logsigmoid(Op):
    """y = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)); dx = g sigmoid(-x)"""

    name, onnx, saves_inputs = "logsigmoid", None, False  # exported as Log(Sigmoid(x))

    def forward(self, x):
        _floats(x, self.name)
        self.z = np.exp(-np.abs(x))
        self.neg = x < 0
        return np.minimum(x, 0) - np.log1p(self.z)

    def backward(self, g):
        z = self.z
        # sigmoid(-x) = 1 / (1 + z) for x < 0, z / (1 + z) for x >= 0: neither overflows
        return g * np.where(self.neg, 1, z) / (1 + z)


class Hardswish(Op):
    """y = x relu6(x + 3) / 6; dx = 0 if x <= -3, g (x / 3 + 1/2) if x < 3, else g"""

    name, onnx = "hardswish", "HardSwish"  # opset 14; earlier: x HardSigmoid(x)

    def forward(self, x):
        self.x = _floats(x, self.name)
        t = x.dtype.type
        return x * np.clip(x + t(3), t(0), t(6)) / t(6)

    def backward(self, g):
        x, t = self.x, g.dtype.type
        # NOTE: torch's kink values: 0 at x = -3 and 1 at x = 3 (the outer pieces)
        d = np.where(x <= t(-3), t(0), np.where(x < t(3), x / t(3) + t(0.5), t(1)))
        return g * d


# -- functional API -------------------------------------------------------------------------


def logsigmoid(input) -> Tensor:
    """torch.nn.functional.logsigmoid: log(1 / (1 + exp(-x))), stable for any x."""
    return Logsigmoid.apply(lift(input))


def hardswish(input) -> Tensor:
    """torch.nn.functional.hardswish: x relu6(x + 3) / 6."""
    return Hardswish.apply(lift(input))


def hardsigmoid(input) -> Tensor:
    """torch.nn.functional.hardsigmoid: relu6(x + 3) / 6; gradient 1/6 on -3 < x < 3."""
    x = lift(input)
    _floats(x.data, "hardsigmoid")
    return act.hardtanh(x + 3.0, 0.0, 6.0) / 6.0


def celu(input, alpha: float = 1.0) -> Tensor:
    """torch.nn.functional.celu: max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
    alpha = _number(alpha, "alpha", "celu")
    if alpha == 0:
        raise BpcliError("alpha must not be 0", "celu")
    x = lift(input)
    if alpha == 1.0:
        return act.elu(x, 1.0)
    # celu(x, a) = a elu(x / a, 1): the same function, one op fewer to maintain
    return act.elu(x / alpha, 1.0) * alpha


def mish(input) -> Tensor:
    """torch.nn.functional.mish: x tanh(softplus(x))."""
    x = lift(input)
    return x * ew.tanh(act.softplus(x))


def softsign(input) -> Tensor:
    """torch.nn.functional.softsign: x / (1 + |x|)."""
    x = lift(input)
    _floats(x.data, "softsign")
    return x / (ew.abs(x) + 1.0)


def _implicit_dim(ndim: int) -> int:
    # torch's legacy choice when softmax-like functions get dim=None
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """torch.nn.functional.softmin: softmax(-x) along ``dim`` (torch's implicit dim if None)."""
    x = lift(input)
    if dtype is not None:
        x = ew.astype(x, dtype)
    if dim is None:
        dim = _implicit_dim(x.ndim)
    return softmax(-x, dim=dim)


def prelu(input, weight) -> Tensor:
    """torch.nn.functional.prelu: x where x > 0, else weight x, with one weight per channel
    (dim 1; ``weight`` has 1 or C elements)."""
    x, w = lift(input), lift(weight)
    _floats(x.data, "prelu")
    if w.dtype != x.dtype:
        raise BpcliError(f"weight dtype {w.dtype} != input dtype {x.dtype}", "prelu")
    if w.numel() != 1:
        c = x.shape[1] if x.ndim >= 2 else 1
        if w.ndim != 1 or w.numel() != c:
            raise BpcliError(
                f"weight must have 1 or {c} (channel) elements for input of shape {x.shape}, "
                f"got shape {w.shape}",
                "prelu",
            )
        w = reshape(w, (c,) + (1,) * (x.ndim - 2))
    elif w.ndim:
        w = reshape(w, ())
    return ew.where(ew.gt(x, 0.0), x, w * x)


def glu(input, dim: int = -1) -> Tensor:
    """torch.nn.functional.glu: a sigmoid(b), where a, b are the halves of ``dim``."""
    x = lift(input)
    if x.ndim == 0:
        raise BpcliError("glu does not support 0-d tensors", "glu")
    if not -x.ndim <= dim < x.ndim:
        raise BpcliError(f"dim {dim} is out of range for a tensor with {x.ndim} dims", "glu")
    n = x.shape[dim]
    if n % 2:
        raise BpcliError(f"halving dimension must be even, but dimension {dim} is size {n}",
                         "glu")  # fmt: skip
    a, b = split(x, n // 2, dim=dim)
    return a * ew.sigmoid(b)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """torch.nn.functional.normalize: x / max(||x||_p over ``dim``, eps)."""
    if out is not None:
        raise BpcliError("out= is not supported: use the returned tensor", "normalize")
    x = lift(input)
    _floats(x.data, "normalize")
    n = rd.norm(x, p, dim=dim, keepdim=True)
    return x / act.clip(n, min=eps)
