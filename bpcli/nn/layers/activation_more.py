"""Layers of the newer activations (``activation_more``), as torch.nn's modules: CELU,
LogSigmoid, Hardsigmoid, Hardswish, Mish, Softsign, Softmin, ReLU6, PReLU (trainable) and GLU."""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.module import Module, Parameter


class CELU(Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.celu(x, self.alpha)


class LogSigmoid(Module):
    def forward(self, x):
        return F.logsigmoid(x)


class Hardsigmoid(Module):
    def forward(self, x):
        return F.hardsigmoid(x)


class Hardswish(Module):
    def forward(self, x):
        return F.hardswish(x)


class Mish(Module):
    def forward(self, x):
        return F.mish(x)


class Softsign(Module):
    def forward(self, x):
        return F.softsign(x)


class ReLU6(Module):
    def forward(self, x):
        return F.relu6(x)


class Softmin(Module):
    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmin(x, self.dim)


class GLU(Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.glu(x, self.dim)


class PReLU(Module):
    """x where x > 0, else a x, with ``num_parameters`` trainable slopes (1, or one per
    channel of dim 1) starting at ``init``, as torch.nn.PReLU."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None):
        super().__init__()
        if not isinstance(num_parameters, int) or num_parameters < 1:
            raise BpcliError(f"num_parameters must be a positive int, got {num_parameters!r}",
                             "PReLU")  # fmt: skip
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(np.full(num_parameters, init, np.dtype(dtype or np.float32)))

    def forward(self, x):
        return F.prelu(x, self.weight)


# NOTE: no registry name "mish": the example plugin bpcli-extras registers that name (its
# tests show a plugin's part appearing and going); bp.nn.Mish is still here to use directly.
LAYERS = {
    "celu": CELU, "logsigmoid": LogSigmoid, "hardsigmoid": Hardsigmoid, "hardswish": Hardswish,
    "softsign": Softsign, "relu6": ReLU6, "softmin": Softmin, "glu": GLU, "prelu": PReLU,
}  # fmt: skip
