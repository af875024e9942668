"""Linear, Identity, Flatten."""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features); PyTorch's default init.

    ``in_features=None`` infers the size from the first input (the spec may omit it).
    """

    def __init__(self, in_features: int | None, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.dtype = np.dtype(dtype or np.float32)
        self.use_bias = bias
        self.weight = None
        self.register_parameter("bias", None)
        if in_features is not None:
            self.build(in_features)

    def build(self, in_features: int) -> None:
        self.in_features = in_features
        self.weight = Parameter(np.empty((self.out_features, in_features), self.dtype))
        # torch: kaiming_uniform_(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)), same for bias
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.use_bias:
            bound = 1 / math.sqrt(in_features) if in_features > 0 else 0
            self.bias = Parameter(np.empty(self.out_features, self.dtype))
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if self.weight is None:
            self.build(x.shape[-1])
        elif x.shape[-1] != self.in_features:
            raise BpcliError(
                f"expects {self.in_features} features in the last dim, got shape {x.shape}",
                "Linear",
            )
        return F.linear(x, self.weight, self.bias)

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.use_bias, "dtype": self.dtype.name}  # fmt: skip


class Identity(Module):
    """y = x; any constructor arguments are ignored, as torch's (a drop-in for a layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def get_config(self) -> dict:
        return {}


class Flatten(Module):
    """Flattens dims start_dim..end_dim (PyTorch's defaults keep the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


LAYERS = {"linear": Linear, "identity": Identity, "flatten": Flatten}
