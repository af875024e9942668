"""3-D max and average pooling, max pooling that also returns torch's indices, and max_unpool.

Arguments, output sizes and indices follow PyTorch: an index is the flat position of the
maximum within its (N, C) plane (``(z * H + y) * W + x``), which is what ``max_unpool`` reads.
Window rules are those of ``pool.py``, whose argument checks these share.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops.conv import ntuple
from bpcli.engine.ops import pool as _pool
from bpcli.engine.ops.pool import _avg_pool, _max_pool, _pool_args
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.pool import maxpool2d_fwd
from bpcli.kernels.pool3d import avgpool3d_bwd, avgpool3d_fwd, maxpool3d_fwd, pool_scatter_bwd

__all__ = [
    "avg_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d",
    "max_pool3d_with_indices",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
]


def _max_fwd(x, nd, kernel_size, stride, padding, dilation, output_size):
    """(values, flat per-plane argmax) of any rank, on the 2-D kernel for ranks 1 and 2."""
    x = np.ascontiguousarray(x)
    if nd == 3:
        return maxpool3d_fwd(x, *kernel_size, *stride, *padding[:3], *dilation, *output_size)

    def as2(t, fill=1):
        return (fill, *t) if nd == 1 else tuple(t)

    x2 = x if nd == 2 else x[:, :, None, :]
    out, arg = maxpool2d_fwd(
        x2, *as2(kernel_size), *as2(stride), *as2(padding[:nd], 0), *as2(dilation),
        *as2(output_size),
    )  # fmt: skip
    return (out, arg) if nd == 2 else (out[:, :, 0, :], arg[:, :, 0, :])


class MaxPool3d(Op):
    """y = max over each window; dx = g scattered to each window's argmax"""

    name, onnx, saves_inputs = "max_pool3d", "MaxPool", False
    nd = 3

    def forward(self, x, *, kernel_size, stride, padding, dilation, ceil_mode, output_size):
        out, self.arg = _max_fwd(x, self.nd, kernel_size, stride, padding, dilation, output_size)
        self.in_shape = x.shape
        return out

    def backward(self, g, *_):
        plane = int(np.prod(self.in_shape[2:]))
        dx = pool_scatter_bwd(np.ascontiguousarray(g), self.arg, plane)
        return (dx.reshape(self.in_shape),)


class MaxPool3dWithIndices(MaxPool3d):
    """(y, i) = (max, flat argmax) over each window; dx = g scattered to i"""

    name, onnx, n_outputs = "max_pool3d_with_indices", None, 2

    def forward(self, x, **attrs):
        return super().forward(x, **attrs), self.arg


class MaxPool2dWithIndices(MaxPool3dWithIndices):
    """(y, i) = (max, flat y * W + x argmax) over each window; dx = g scattered to i"""

    name, nd = "max_pool2d_with_indices", 2


class MaxPool1dWithIndices(MaxPool3dWithIndices):
    """(y, i) = (max, argmax) over each window of (N, C, L); dx = g scattered to i"""

    name, nd = "max_pool1d_with_indices", 1


def max_pool3d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """3-D max pooling of x (N, C, D, H, W); with ``return_indices``, (values, indices)."""
    cls = MaxPool3dWithIndices if return_indices else MaxPool3d
    return _max_pool(cls, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d_with_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``max_pool1d`` returning (values, indices), as torch's."""
    return _max_pool(MaxPool1dWithIndices, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d_with_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``max_pool2d`` returning (values, indices), indices flat per (N, C) plane as torch's."""
    return _max_pool(MaxPool2dWithIndices, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d_with_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``max_pool3d`` returning (values, indices), as torch's."""
    return _max_pool(MaxPool3dWithIndices, x, kernel_size, stride, padding, dilation, ceil_mode)


# -- average pooling --------------------------------------------------------------------------


class AvgPool3d(Op):
    """y = sum over each window / divisor; dx = g / divisor spread over each window"""

    name, onnx, saves_inputs = "avg_pool3d", "AveragePool", False
    nd = 3

    def forward(
        self, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, output_size,
        divisor_override=0,
    ):  # fmt: skip
        self.geom = (*kernel_size, *stride, *padding[:3])
        self.in_shape = x.shape
        x = np.ascontiguousarray(x)
        return avgpool3d_fwd(x, *self.geom, *output_size, count_include_pad, divisor_override)

    def backward(self, g):
        a = self.attrs
        dx = avgpool3d_bwd(
            np.ascontiguousarray(g), *self.in_shape[2:], *self.geom, a["count_include_pad"],
            a.get("divisor_override", 0),
        )  # fmt: skip
        return (dx,)


def avg_pool3d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None,
) -> Tensor:  # fmt: skip
    """3-D average pooling of x (N, C, D, H, W), with torch's divisors."""
    if divisor_override is None:
        return _avg_pool(AvgPool3d, x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    if not isinstance(divisor_override, int | np.integer) or divisor_override < 1:
        raise BpcliError(
            f"divisor_override must be a positive int, got {divisor_override!r}", AvgPool3d.name
        )
    x = lift(x)
    ks, st, pd, _, out = _pool_args(
        AvgPool3d.name, x, 3, kernel_size, stride, padding, 1, ceil_mode
    )
    return AvgPool3d.apply(
        x, kernel_size=ks, stride=st, padding=pd, ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad), output_size=out,
        divisor_override=int(divisor_override),
    )  # fmt: skip


# -- max_unpool -------------------------------------------------------------------------------


class MaxUnpool(Op):
    """y = zeros with y[i] = x (per (N, C) plane); dx = g[i]"""

    name, onnx, saves_inputs = "max_unpool", None, False

    def forward(self, x, indices, *, output_size):
        n, c = x.shape[:2]
        plane = int(np.prod(output_size))
        idx = indices.reshape(n, c, -1).astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= plane):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise BpcliError(
                f"index {bad} is out of range for an output plane of {output_size}", self.name
            )
        out = np.zeros((n, c, plane), dtype=x.dtype)
        # NOTE: a repeated index keeps the first value, as torch's CPU max_unpool2d does
        # (numpy's put keeps the last one in memory order, so write a reversed copy)
        rev = (np.ascontiguousarray(a.reshape(n, c, -1)[..., ::-1]) for a in (idx, x))
        np.put_along_axis(out, next(rev), next(rev), axis=2)
        self.idx, self.in_shape = idx, x.shape
        return out.reshape(n, c, *output_size)

    def backward(self, g):
        g2 = g.reshape(*g.shape[:2], -1)
        return np.take_along_axis(g2, self.idx, axis=2).reshape(self.in_shape), None


def _max_unpool(nd, x, indices, kernel_size, stride, padding, output_size):
    opname = f"max_unpool{nd}d"
    x = lift(x)
    ind = indices.numpy() if isinstance(indices, Tensor) else np.asarray(indices)
    if x.ndim != nd + 2:
        raise BpcliError(f"input of shape {x.shape} must have {nd + 2} dims", opname)
    if ind.shape != x.shape or ind.dtype.kind not in "iu":
        raise BpcliError(
            f"indices must be integers of the input's shape {x.shape}, got {ind.shape} {ind.dtype}",
            opname,
        )
    ks = ntuple(kernel_size, nd, "kernel_size", opname)
    st = ks if stride is None else ntuple(stride, nd, "stride", opname)
    pd = ntuple(padding, nd, "padding", opname, low=0)
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in zip(x.shape[2:], ks, st, pd))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)
        out = out[-nd:] if len(out) == nd + 2 else out
        if len(out) != nd or not all(
            d - s < o < d + s for o, d, s in zip(out, default, st, strict=True)
        ):
            raise BpcliError(
                f"output_size {tuple(output_size)} must have {nd} sizes, each within stride "
                f"{st} of the default {default}",
                opname,
            )
    # a traced int64 tensor stays in the graph (an export keeps computing it); else a constant
    live = isinstance(indices, Tensor) and ind.dtype == np.int64
    return MaxUnpool.apply(x, indices if live else const(ind.astype(np.int64)), output_size=out)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of max_pool1d: x placed at ``indices`` of a zero (N, C, L_out) tensor."""
    return _max_unpool(1, x, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of max_pool2d: x placed at the flat per-plane ``indices`` of a zero output."""
    return _max_unpool(2, x, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of max_pool3d: x placed at the flat per-plane ``indices`` of a zero output."""
    return _max_unpool(3, x, indices, kernel_size, stride, padding, output_size)


def max_pool2d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """torch's F.max_pool2d: with ``return_indices``, (values, indices) flat per (N, C) plane."""
    if return_indices:
        return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _pool.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """torch's F.max_pool1d: with ``return_indices``, (values, indices) flat per (N, C) plane."""
    if return_indices:
        return max_pool1d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _pool.max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode)
