"""Max, average, adaptive and global average pooling layers (PyTorch's arguments)."""

from __future__ import annotations

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.layers.conv import expect_input
from bpcli.nn.module import Module


def _unsupported(layer: str, what: str, value) -> None:
    raise BpcliError(f"{what}={value!r} is not supported", layer)


class MaxPool2d(Module):
    """Max over each window of (N, C, H, W); ``stride`` defaults to ``kernel_size``."""

    nd, layout = 2, "N, C, H, W"

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        if return_indices:
            _unsupported(type(self).__name__, "return_indices", return_indices)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x):
        expect_input(self, x, (self.nd + 2,), self.layout)
        pool = F.max_pool2d if self.nd == 2 else F.max_pool1d
        return pool(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class MaxPool1d(MaxPool2d):
    """Max over each window of (N, C, L); ``stride`` defaults to ``kernel_size``."""

    nd, layout = 1, "N, C, L"


class AvgPool2d(Module):
    """Mean over each window of (N, C, H, W), with torch's divisors."""

    nd, layout = 2, "N, C, H, W"

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override=None,
    ):
        super().__init__()
        if divisor_override is not None:
            _unsupported(type(self).__name__, "divisor_override", divisor_override)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        expect_input(self, x, (self.nd + 2,), self.layout)
        pool = F.avg_pool2d if self.nd == 2 else F.avg_pool1d
        return pool(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )


class AvgPool1d(AvgPool2d):
    """Mean over each window of (N, C, L), with torch's divisors."""

    nd, layout = 1, "N, C, L"

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):  # fmt: skip
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average (N, C, H, W) into ``output_size`` bins (int, pair, None keeps that side)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        expect_input(self, x, (4,), "N, C, H, W")
        return F.adaptive_avg_pool2d(x, self.output_size)


class GlobalAvgPool(Module):
    """Mean over H and W of (N, C, H, W): (N, C, 1, 1) as ONNX GlobalAveragePool, or (N, C)
    with ``flatten=True``."""

    def __init__(self, flatten: bool = False):
        super().__init__()
        self.flatten = flatten

    def forward(self, x):
        expect_input(self, x, (4,), "N, C, H, W")
        y = F.global_avg_pool2d(x)
        return F.flatten(y, 1) if self.flatten else y


LAYERS = {
    "max_pool1d": MaxPool1d, "max_pool2d": MaxPool2d, "avg_pool1d": AvgPool1d,
    "avg_pool2d": AvgPool2d, "adaptive_avg_pool2d": AdaptiveAvgPool2d,
    "global_avg_pool": GlobalAvgPool,
}  # fmt: skip
