"""Bilinear: y = x1^T A x2 + b, torch.nn.Bilinear's layer."""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter


class Bilinear(Module):
    """y[..., o] = sum_ij x1[..., i] A[o, i, j] x2[..., j] + b[o]; A of shape
    (out_features, in1_features, in2_features), both U(-1/sqrt(in1), 1/sqrt(in1)) as torch.

    Written with matmul/reshape/permute, so it needs no op of its own: one GEMM of
    (N, in1) by (in1, out*in2), then a product with x2 summed over in2.
    """

    # what `bpcli plugins check` builds and gradient-checks it with (two inputs)
    example_config = {"in1_features": 3, "in2_features": 4, "out_features": 2}
    example_input_shape = [(2, 3), (2, 4)]

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, dtype=None):  # fmt: skip
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features, self.dtype = out_features, np.dtype(dtype or np.float32)
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), self.dtype))
        bound = 1 / math.sqrt(in1_features) if in1_features > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if bias:
            self.bias = Parameter(np.empty(out_features, self.dtype))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)

    def forward(self, x1, x2):
        if x1.shape[-1:] != (self.in1_features,) or x2.shape[-1:] != (self.in2_features,):
            raise BpcliError(
                f"expects inputs (*, {self.in1_features}) and (*, {self.in2_features}), "
                f"got {x1.shape} and {x2.shape}",
                "Bilinear",
            )
        if x1.shape[:-1] != x2.shape[:-1]:
            raise BpcliError(
                f"inputs need the same leading dims, got {x1.shape} and {x2.shape}", "Bilinear"
            )
        lead, i1, i2, o = x1.shape[:-1], self.in1_features, self.in2_features, self.out_features
        a = F.reshape(F.permute(self.weight, (1, 0, 2)), (i1, o * i2))
        t = F.reshape(F.matmul(F.reshape(x1, (-1, i1)), a), (-1, o, i2))
        y = F.sum(t * F.unsqueeze(F.reshape(x2, (-1, i2)), 1), dim=-1)
        if self.bias is not None:
            y = y + self.bias
        return F.reshape(y, (*lead, o))

    def get_config(self) -> dict:
        return {"in1_features": self.in1_features, "in2_features": self.in2_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "dtype": self.dtype.name}  # fmt: skip


LAYERS = {"bilinear": Bilinear}
