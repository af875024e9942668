"""Activation layers: Mish (on the ``extras_mish`` primitive) and Swish (a composite)."""

from __future__ import annotations

import bpcli as bp
import numpy as np
from bpcli import functional as F
from bpcli.nn import Module, Parameter

from bpcli_extras.ops import mish

__all__ = ["Mish", "Swish", "swish"]


def swish(input, beta=1.0) -> bp.Tensor:  # noqa: A002 - torch's argument name
    """``x * sigmoid(beta * x)`` (Ramachandran et al. 2017); beta may be a tensor.

    Built from existing ops, so it needs no backward of its own: the engine differentiates
    the composition, including with respect to a learnable ``beta``.
    """
    x = input if isinstance(input, bp.Tensor) else bp.tensor(input)
    return x * F.sigmoid(x * beta)


class Mish(Module):
    """``x * tanh(softplus(x))`` (Misra 2019), as ``torch.nn.Mish``."""

    def forward(self, x):
        return mish(x)


class Swish(Module):
    """``x * sigmoid(beta * x)``; with ``learnable=True`` beta is a trained scalar parameter.

    Args:
        beta: the slope inside the sigmoid (1.0 is SiLU).
        learnable: train ``beta`` (it then appears in ``parameters()`` and the state dict).
        dtype: dtype of the learnable ``beta`` (float32 by default; match the model's).
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False, dtype=None):
        super().__init__()
        self.learnable = learnable
        if learnable:
            self.beta = Parameter(np.array(beta, dtype=np.dtype(dtype or np.float32)))
        else:
            self.beta = float(beta)

    def forward(self, x):
        return swish(x, self.beta)
