"""Max and average pooling over NCHW (and NCL) arrays, adaptive and global average pooling.

Arguments and output sizes follow PyTorch (``stride`` defaults to the kernel size; padding at
most half the kernel; ``ceil_mode`` keeps a last window only if it starts inside the input or
its left padding). Attributes are plain tuples; ``padding`` is in ONNX ``pads`` order.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.conv import ntuple
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.pool import avgpool2d_bwd, avgpool2d_fwd, maxpool2d_bwd, maxpool2d_fwd

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "global_avg_pool2d",
    "max_pool1d",
    "max_pool2d",
]


def pool_out_size(n_in: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape."""
    span = n_in + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n_in + p:
        out -= 1
    return out


def _pool_args(opname, x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    if x.ndim != nd + 2:
        dims = ("N, C, L", "N, C, H, W", "N, C, D, H, W")[nd - 1]
        raise BpcliError(f"input of shape {x.shape} must have {nd + 2} dims ({dims})", opname)
    ks = ntuple(kernel_size, nd, "kernel_size", opname)
    st = (
        ks
        if stride is None or (not isinstance(stride, int) and len(stride) == 0)
        else ntuple(stride, nd, "stride", opname)
    )
    pd = ntuple(padding, nd, "padding", opname, low=0)
    dl = ntuple(dilation, nd, "dilation", opname)
    if any(2 * p > k for p, k in zip(pd, ks, strict=True)):
        raise BpcliError(f"padding {pd} must be at most half the kernel size {ks}", opname)
    out = tuple(
        pool_out_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(x.shape[2:], ks, st, pd, dl, strict=True)
    )
    if any(o < 1 for o in out):
        raise BpcliError(
            f"kernel {ks} (dilation {dl}, padding {pd}) is larger than the padded input {x.shape}; "
            f"output size would be {out}",
            opname,
        )
    return ks, st, pd + pd, dl, out


def _as2d(x, nd):
    return x if nd == 2 else x[:, :, None, :]


# -- max pooling ------------------------------------------------------------------------------


class MaxPool2d(Op):
    """y = max over each window; dx = g scattered to each window's argmax"""

    name, onnx, saves_inputs = "max_pool2d", "MaxPool", False
    nd = 2

    def forward(self, x, *, kernel_size, stride, padding, dilation, ceil_mode, output_size):
        nd = self.nd
        x2 = np.ascontiguousarray(_as2d(x, nd))
        kh, kw = (1, *kernel_size) if nd == 1 else kernel_size
        sh, sw = (1, *stride) if nd == 1 else stride
        dh, dw = (1, *dilation) if nd == 1 else dilation
        oh, ow = (1, *output_size) if nd == 1 else output_size
        out, self.arg = maxpool2d_fwd(
            x2, kh, kw, sh, sw, padding[0] if nd == 2 else 0, padding[nd - 1], dh, dw, oh, ow
        )
        self.in_shape = x.shape
        return out if nd == 2 else out[:, :, 0, :]

    def backward(self, g):
        g = np.ascontiguousarray(_as2d(g, self.nd))
        h, w = (1, self.in_shape[2]) if self.nd == 1 else self.in_shape[2:]
        return (maxpool2d_bwd(g, self.arg, h, w).reshape(self.in_shape),)


class MaxPool1d(MaxPool2d):
    """y = max over each window of (N, C, L); dx = g scattered to each window's argmax"""

    name, onnx = "max_pool1d", "MaxPool"
    nd = 1


def _max_pool(cls, x, kernel_size, stride, padding, dilation, ceil_mode):
    x = lift(x)
    ks, st, pd, dl, out = _pool_args(
        cls.name, x, cls.nd, kernel_size, stride, padding, dilation, ceil_mode
    )
    return cls.apply(
        x,
        kernel_size=ks,
        stride=st,
        padding=pd,
        dilation=dl,
        ceil_mode=bool(ceil_mode),
        output_size=out,
    )


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling of x (N, C, H, W); padding counts as -inf, as torch's. (The public
    ``F.max_pool2d`` with ``return_indices`` is pool3d.py's, which builds on this.)"""
    return _max_pool(MaxPool2d, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """1-D max pooling of x (N, C, L); padding counts as -inf, as torch's. (The public
    ``F.max_pool1d`` with ``return_indices`` is pool3d.py's, which builds on this.)"""
    return _max_pool(MaxPool1d, x, kernel_size, stride, padding, dilation, ceil_mode)


# -- average pooling --------------------------------------------------------------------------


class AvgPool2d(Op):
    """y = sum over each window / divisor; dx = g / divisor spread over each window"""

    name, onnx, saves_inputs = "avg_pool2d", "AveragePool", False
    nd = 2

    def forward(
        self, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, output_size
    ):
        nd = self.nd
        self.geom = (
            *((1, *kernel_size) if nd == 1 else kernel_size),
            *((1, *stride) if nd == 1 else stride),
            padding[0] if nd == 2 else 0,
            padding[nd - 1],
        )
        oh, ow = (1, *output_size) if nd == 1 else output_size
        self.in_shape = x.shape
        out = avgpool2d_fwd(
            np.ascontiguousarray(_as2d(x, nd)), *self.geom, oh, ow, count_include_pad
        )
        return out if nd == 2 else out[:, :, 0, :]

    def backward(self, g):
        g = np.ascontiguousarray(_as2d(g, self.nd))
        h, w = (1, self.in_shape[2]) if self.nd == 1 else self.in_shape[2:]
        dx = avgpool2d_bwd(g, h, w, *self.geom, self.attrs["count_include_pad"])
        return (dx.reshape(self.in_shape),)


class AvgPool1d(AvgPool2d):
    """y = sum over each window of (N, C, L) / divisor; dx = g / divisor spread over each window"""

    name, onnx = "avg_pool1d", "AveragePool"
    nd = 1


def _avg_pool(cls, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    x = lift(x)
    ks, st, pd, _, out = _pool_args(cls.name, x, cls.nd, kernel_size, stride, padding, 1, ceil_mode)
    return cls.apply(
        x,
        kernel_size=ks,
        stride=st,
        padding=pd,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        output_size=out,
    )


def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
) -> Tensor:
    """2-D average pooling of x (N, C, H, W), with torch's divisors."""
    return _avg_pool(AvgPool2d, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool1d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
) -> Tensor:
    """1-D average pooling of x (N, C, L), with torch's divisors."""
    return _avg_pool(AvgPool1d, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


# -- adaptive and global average pooling ------------------------------------------------------


def _bins(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix of torch's adaptive bins [floor(i n/o), ceil((i+1) n/o))."""
    m = np.zeros((n_out, n_in), dtype=dtype)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class AdaptiveAvgPool2d(Op):
    """y = Ph x Pw^T (bin means, separable); dx = Ph^T g Pw"""

    name, onnx, saves_inputs = "adaptive_avg_pool2d", None, False

    def forward(self, x, *, output_size):
        sides = zip(x.shape[2:], output_size, strict=True)
        self.ph, self.pw = (_bins(n, o, x.dtype) for n, o in sides)
        return np.einsum("ih,nchw,jw->ncij", self.ph, x, self.pw, optimize=True)

    def backward(self, g):
        return (np.einsum("ih,ncij,jw->nchw", self.ph, g, self.pw, optimize=True),)


class GlobalAvgPool2d(Op):
    """y = mean(x, axes=(2, 3), keepdims); dx = g / (H W) broadcast"""

    name, onnx, saves_inputs = "global_avg_pool2d", "GlobalAveragePool", False

    def forward(self, x):
        self.in_shape = x.shape
        return np.mean(x, axis=(2, 3), keepdims=True)

    def backward(self, g):
        n = max(self.in_shape[2] * self.in_shape[3], 1)
        return (np.broadcast_to(g / g.dtype.type(n), self.in_shape),)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """Average pooling of x (N, C, H, W) to ``output_size`` (int, pair, None keeps a side)."""
    x = lift(x)
    opname = AdaptiveAvgPool2d.name
    if x.ndim != 4:
        raise BpcliError(f"input of shape {x.shape} must have 4 dims (N, C, H, W)", opname)
    sizes = (output_size,) * 2 if isinstance(output_size, int | np.integer) else tuple(output_size)
    if len(sizes) != 2:
        raise BpcliError(f"output_size must be an int or a pair, got {output_size!r}", opname)
    out = tuple(int(n if o is None else o) for o, n in zip(sizes, x.shape[2:], strict=True))
    if any(o < 1 for o in out):
        raise BpcliError(f"output_size {out} must be positive", opname)
    h, w = x.shape[2:]
    if out == (1, 1):
        return global_avg_pool2d(x)
    if h % out[0] == 0 and w % out[1] == 0:
        # equal bins: an ordinary average pool, which exports to ONNX AveragePool
        k = (h // out[0], w // out[1])
        return avg_pool2d(x, k, k)
    return AdaptiveAvgPool2d.apply(x, output_size=out)


def global_avg_pool2d(x) -> Tensor:
    """Mean of x (N, C, H, W) over H and W, keeping them as size 1 (ONNX GlobalAveragePool)."""
    x = lift(x)
    if x.ndim != 4:
        raise BpcliError(
            f"input of shape {x.shape} must have 4 dims (N, C, H, W)", GlobalAvgPool2d.name
        )
    return GlobalAvgPool2d.apply(x)
