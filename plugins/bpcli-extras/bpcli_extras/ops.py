"""A new engine primitive: Mish with a fused forward and backward.

Mish could be composed from softplus, tanh and mul, but that graph keeps three intermediate
arrays and walks four nodes backward; one op saves the input and tanh(softplus(x)) and
computes the derivative in one expression.
"""

from __future__ import annotations

import bpcli as bp
import numpy as np
from bpcli.engine.op import Op
from bpcli.errors import BpcliError

__all__ = ["mish"]


class Mish(Op):
    """y = x t, t = tanh(softplus(x)); dx = g (t + x sigmoid(x) (1 - t^2))"""

    name, onnx = "extras_mish", "Mish"  # ONNX Mish exists from opset 18

    def forward(self, x):
        if x.dtype not in (np.float32, np.float64):
            raise BpcliError(f"needs a float32 or float64 tensor, got {x.dtype}", "mish")
        zero = x.dtype.type(0)
        # logaddexp(x, 0) is softplus without overflow for large x.
        self.x, self.t = x, np.tanh(np.logaddexp(x, zero))
        return x * self.t

    def backward(self, g):
        x, t = self.x, self.t
        half = x.dtype.type(0.5)
        s = half * (1 + np.tanh(half * x))  # sigmoid without exp overflow
        return g * (t + x * s * (1 - t * t))


def mish(input) -> bp.Tensor:  # noqa: A002 - torch's argument name
    """Mish activation ``x * tanh(softplus(x))`` (``torch.nn.functional.mish``)."""
    x = input if isinstance(input, bp.Tensor) else bp.tensor(input)
    return Mish.apply(x)
