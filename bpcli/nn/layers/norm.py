"""BatchNorm1d/2d, LayerNorm, GroupNorm with PyTorch's arguments, parameters and buffers.

Sizes may be left ``None`` and are inferred from the first input (torch's LazyBatchNorm).
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.layers.conv import expect_channels, expect_input
from bpcli.nn.module import Module, Parameter


def expect_min_rank(layer: Module, x, rank: int, layout: str) -> None:
    if x.ndim < rank:
        raise BpcliError(
            f"expects input with at least {rank} dims ({layout}), got shape {tuple(x.shape)}",
            type(layer).__name__,
        )


def _affine(layer: Module, shape: tuple[int, ...], weight: bool, bias: bool) -> None:
    if weight:
        layer.weight = Parameter(np.ones(shape, layer.dtype))
    if bias:
        layer.bias = Parameter(np.zeros(shape, layer.dtype))


class _BatchNorm(Module):
    ranks: tuple[int, ...] = (4,)
    layout = "N, C, H, W"

    def __init__(
        self,
        num_features: int | None,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=None,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.dtype = np.dtype(dtype or np.float32)
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, None)
        if num_features is not None:
            self.build(num_features)

    def build(self, num_features: int) -> None:
        self.num_features = num_features
        _affine(self, (num_features,), self.affine, self.affine)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, self.dtype))
            self.register_buffer("running_var", np.ones(num_features, self.dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        expect_input(self, x, self.ranks, self.layout)
        if self.num_features is None:
            self.build(x.shape[1])
        expect_channels(self, x, self.num_features, "features")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            self.num_batches_tracked._version += 1
            if self.momentum is None:  # cumulative moving average, as torch
                factor = 1.0 / float(self.num_batches_tracked.data)
        # torch: without running stats, eval mode also normalises by the batch statistics
        batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, batch_stats,
            factor, self.eps,
        )  # fmt: skip

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "dtype": self.dtype.name}  # fmt: skip


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) per channel C."""

    ranks, layout = (2, 3), "N, C or N, C, L"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) per channel C."""

    ranks, layout = (4,), "N, C, H, W"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims; weight 1, bias 0 of that shape.

    ``normalized_shape=None`` normalises over the last dim, its size taken from the first input.
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        self.eps, self.elementwise_affine, self.use_bias = eps, elementwise_affine, bias
        self.dtype = np.dtype(dtype or np.float32)
        self.normalized_shape = None
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if normalized_shape is not None:
            self.build(normalized_shape)

    def build(self, normalized_shape) -> None:
        ns = normalized_shape
        self.normalized_shape = (ns,) if isinstance(ns, int | np.integer) else tuple(ns)
        self.normalized_shape = tuple(int(n) for n in self.normalized_shape)
        affine = self.elementwise_affine
        _affine(self, self.normalized_shape, affine, affine and self.use_bias)

    def forward(self, x):
        if self.normalized_shape is None:
            expect_min_rank(self, x, 1, "at least 1 dim")
            self.build(x.shape[-1])
        ns = self.normalized_shape
        if x.ndim < len(ns) or tuple(x.shape[x.ndim - len(ns) :]) != ns:
            raise BpcliError(
                f"normalized_shape {ns} is not the trailing dims of input shape {tuple(x.shape)}",
                "LayerNorm",
            )
        return F.layer_norm(x, ns, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        ns = None if self.normalized_shape is None else list(self.normalized_shape)
        return {"normalized_shape": ns, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.use_bias,
                "dtype": self.dtype.name}  # fmt: skip


class GroupNorm(Module):
    """Normalise each sample of (N, C, *) over ``num_groups`` groups of channels; per-channel
    weight 1, bias 0. ``num_channels=None`` takes C from the first input."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int | None,
        eps: float = 1e-5,
        affine: bool = True,
        dtype=None,
    ):
        super().__init__()
        if not isinstance(num_groups, int | np.integer) or num_groups < 1:
            raise BpcliError(f"num_groups must be a positive int, got {num_groups!r}", "GroupNorm")
        self.num_groups, self.eps, self.affine = int(num_groups), eps, affine
        self.dtype = np.dtype(dtype or np.float32)
        self.num_channels = None
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if num_channels is not None:
            self.build(num_channels)

    def build(self, num_channels: int) -> None:
        if num_channels % self.num_groups:
            raise BpcliError(
                f"num_channels {num_channels} is not divisible by num_groups {self.num_groups}",
                "GroupNorm",
            )
        self.num_channels = num_channels
        _affine(self, (num_channels,), self.affine, self.affine)

    def forward(self, x):
        expect_min_rank(self, x, 2, "N, C, *")
        if self.num_channels is None:
            self.build(x.shape[1])
        expect_channels(self, x, self.num_channels)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine, "dtype": self.dtype.name}  # fmt: skip


LAYERS = {
    "batch_norm1d": BatchNorm1d, "batch_norm2d": BatchNorm2d, "layer_norm": LayerNorm,
    "group_norm": GroupNorm,
}  # fmt: skip
