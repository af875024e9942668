"""Conv1d, Conv2d, ConvTranspose2d with PyTorch's arguments, weight layout and default init.

``in_channels=None`` infers the channel count from the first input (torch's Lazy variants).
"""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.engine.ops.conv import ntuple
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter


def expect_input(layer: Module, x, ranks: tuple[int, ...], layout: str) -> None:
    """Raise a BpcliError naming the layer if x's rank is not one of ``ranks``."""
    if x.ndim not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise BpcliError(
            f"expects {want} input ({layout}), got shape {tuple(x.shape)}", type(layer).__name__
        )


def expect_channels(layer: Module, x, channels: int, what: str = "channels") -> None:
    if x.shape[1] != channels:
        raise BpcliError(
            f"expects {channels} {what} in dim 1, got input of shape {tuple(x.shape)}",
            type(layer).__name__,
        )


def reset_conv_(weight: Parameter, bias: Parameter | None) -> None:
    """torch's _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt(5)), bias U(+-1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.fan_in_and_fan_out(weight.shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


def _as_config(v):
    return list(v) if isinstance(v, tuple) else v


class _ConvNd(Module):
    nd = 2
    layout = "N, C, H, W"
    transposed = False

    def _setup(self, in_channels, out_channels, kernel_size, groups, bias, dtype) -> None:
        name = type(self).__name__
        self.kernel_size = ntuple(kernel_size, self.nd, "kernel_size", name)
        if not isinstance(groups, int | np.integer) or groups < 1:
            raise BpcliError(f"groups must be a positive int, got {groups!r}", name)
        if out_channels % groups or (in_channels is not None and in_channels % groups):
            raise BpcliError(
                f"groups={groups} must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels})",
                name,
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.dtype = np.dtype(dtype or np.float32)
        self.use_bias = bias
        self.weight = None
        self.register_parameter("bias", None)
        if in_channels is not None:
            self.build(in_channels)

    def weight_shape(self, in_channels: int) -> tuple[int, ...]:
        if self.transposed:
            return (in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, in_channels // self.groups, *self.kernel_size)

    def build(self, in_channels: int) -> None:
        if in_channels % self.groups:
            raise BpcliError(
                f"groups={self.groups} does not divide the {in_channels} input channels",
                type(self).__name__,
            )
        self.in_channels = in_channels
        self.weight = Parameter(np.empty(self.weight_shape(in_channels), self.dtype))
        if self.use_bias:
            self.bias = Parameter(np.empty(self.out_channels, self.dtype))
        reset_conv_(self.weight, self.bias)

    def _check(self, x) -> None:
        expect_input(self, x, (self.nd + 2,), self.layout)
        if self.weight is None:
            self.build(x.shape[1])
        expect_channels(self, x, self.in_channels)

    def get_config(self) -> dict:
        cfg = {k: _as_config(v) for k, v in super().get_config().items()}
        cfg["in_channels"], cfg["dtype"] = self.in_channels, self.dtype.name
        return cfg


class Conv2d(_ConvNd):
    """2-D convolution of (N, C_in, H, W); weight (C_out, C_in/groups, kH, kW).

    ``padding`` is an int, a pair, 'valid' or 'same' (stride 1; the odd extra pad goes at the
    end, as torch).
    """

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._setup(in_channels, out_channels, kernel_size, groups, bias, dtype)

    def forward(self, x):
        self._check(x)
        conv = F.conv2d if self.nd == 2 else F.conv1d
        w, b = self.weight, self.bias
        return conv(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(Conv2d):
    """1-D convolution of (N, C_in, L); weight (C_out, C_in/groups, k)."""

    nd = 1
    layout = "N, C, L"


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution of (N, C_in, H, W); weight (C_in, C_out/groups, kH, kW)."""

    transposed = True

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        dtype=None,
    ):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.output_padding = output_padding
        self._setup(in_channels, out_channels, kernel_size, groups, bias, dtype)

    def forward(self, x):
        self._check(x)
        return F.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
            self.groups, self.dilation,
        )  # fmt: skip


LAYERS = {"conv1d": Conv1d, "conv2d": Conv2d, "conv_transpose2d": ConvTranspose2d}
