"""3-D convolution and the 1-D/3-D transposed convolutions, as torch's.

Same layout and attribute conventions as ``conv.py`` (whose checks and grouped BLAS products
they share): weights ``(O, C/groups, kd, kh, kw)`` for conv3d and ``(C_in, C_out/groups, k...)``
for the transposed ones; ``padding`` in ONNX ``pads`` order. The 1-D transposed convolution is
the 2-D one with H = 1; the 3-D ones run on the im2col3d/col2im3d kernels.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.op import Op, same_float
from bpcli.engine.ops.conv import (
    ConvTranspose2d,
    _a_bt,
    _conv,
    _conv_transpose,
    _grouped,
    out_size,
)
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.conv3d import col2im3d, im2col3d

__all__ = ["conv3d", "conv_transpose1d", "conv_transpose3d"]


def _nc_first(a: np.ndarray) -> np.ndarray:
    """(N, C, ...) -> (C, N * ...) contiguous: the channel-major operand of a BLAS product."""
    return np.ascontiguousarray(np.moveaxis(a, 1, 0)).reshape(a.shape[1], -1)


class Conv3d(Op):
    """y = W * x + b (cross-correlation); dx = col2im3d(W^T g), dW = g cols^T, db = sum(g)"""

    name, onnx = "conv3d", "Conv"

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        if b is not None:
            w, b = same_float(self.name, w, b)
        x, w = same_float(self.name, x, w)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        o, ks = w.shape[0], w.shape[2:]
        outs = tuple(
            out_size(n, k, s, padding[i], padding[i + 3], d)
            for i, (n, k, s, d) in enumerate(zip(x.shape[2:], ks, stride, dilation, strict=True))
        )
        if min(outs) < 1:
            raise BpcliError(
                f"kernel {ks} (dilation {dilation}) is larger than the padded input of {x.shape}",
                self.name,
            )
        self.geom = (*ks, *stride, *padding[:3], *dilation)
        cols = im2col3d(x, *self.geom, *outs).reshape(-1, x.shape[0] * int(np.prod(outs)))
        self.cols, self.w2, self.shape = cols, w.reshape(o, -1), (x.shape, w.shape, outs)
        y = _grouped(lambda wi, ci: wi @ ci, groups, self.w2, cols)
        y = np.moveaxis(y.reshape(o, x.shape[0], *outs), 0, 1)
        out = np.ascontiguousarray(y)
        if b is not None:
            out += b.reshape(o, 1, 1, 1)
        return out

    def backward(self, g):
        (xs, ws, outs), groups = self.shape, self.attrs["groups"]
        g2 = _nc_first(g)
        dx = dw_ = db = None
        if self.needs[0]:
            dcols = _grouped(lambda wi, gi: wi.T @ gi, groups, self.w2, g2)
            dcols = dcols.reshape(-1, xs[0], *outs)
            dx = col2im3d(dcols, xs[1], *xs[2:], *self.geom)
        if self.needs[1]:
            dw_ = _grouped(_a_bt, groups, g2, self.cols).reshape(ws)
        if len(self.needs) > 2 and self.needs[2]:
            db = g.sum(axis=(0, 2, 3, 4))
        return dx, dw_, db


class ConvTranspose3d(Op):
    """y = col2im3d(W^T x) + b; dx = W im2col3d(g), dW = x im2col3d(g)^T, db = sum(g)"""

    name, onnx = "conv_transpose3d", "ConvTranspose"

    def forward(self, x, w, b=None, *, stride, padding, output_padding, groups, dilation):
        if b is not None:
            w, b = same_float(self.name, w, b)
        x, w = same_float(self.name, x, w)
        c, cog, ks = x.shape[1], w.shape[1], w.shape[2:]
        outs = tuple(
            (n - 1) * s - padding[i] - padding[i + 3] + d * (k - 1) + output_padding[i] + 1
            for i, (n, k, s, d) in enumerate(zip(x.shape[2:], ks, stride, dilation, strict=True))
        )
        if min(outs) < 1:
            raise BpcliError(f"output size {outs} of input {x.shape} is not positive", self.name)
        self.geom = (*ks, *stride, *padding[:3], *dilation)
        xg, w2 = _nc_first(x), np.ascontiguousarray(w).reshape(c, -1)
        cols = _grouped(lambda wi, xi: wi.T @ xi, groups, w2, xg)
        cols = cols.reshape(-1, *x.shape[:1], *x.shape[2:])
        y = col2im3d(cols, cog * groups, *outs, *self.geom)
        self.xg, self.w2, self.shape = xg, w2, (x.shape, w.shape)
        if b is not None:
            y += b.reshape(-1, 1, 1, 1)
        return y

    def backward(self, g):
        (xs, ws), groups = self.shape, self.attrs["groups"]
        g = np.ascontiguousarray(g)
        gcols = im2col3d(g, *self.geom, *xs[2:]).reshape(g.shape[1] * int(np.prod(ws[2:])), -1)
        dx = dw_ = db = None
        if self.needs[0]:
            dx = _grouped(lambda wi, gi: wi @ gi, groups, self.w2, gcols)
            dx = np.moveaxis(dx.reshape(xs[1], xs[0], *xs[2:]), 0, 1)
        if self.needs[1]:
            dw_ = _grouped(_a_bt, groups, self.xg, gcols).reshape(ws)
        if len(self.needs) > 2 and self.needs[2]:
            db = g.sum(axis=(0, 2, 3, 4))
        return dx, dw_, db


class ConvTranspose1d(ConvTranspose2d):
    """y = col2im(W^T x) + b over (N, C, L); as conv_transpose2d with H = 1"""

    name, onnx = "conv_transpose1d", "ConvTranspose"

    def forward(self, x, w, b=None, *, stride, padding, output_padding, groups, dilation):
        return super().forward(
            x[:, :, None, :],
            w[:, :, None, :],
            b,
            stride=(1, *stride),
            padding=(0, padding[0], 0, padding[1]),
            output_padding=(0, *output_padding),
            groups=groups,
            dilation=(1, *dilation),
        )[:, :, 0, :]

    def backward(self, g):
        dx, dw, db = super().backward(g[:, :, None, :])
        return (
            (None if dx is None else dx[:, :, 0, :]),
            (None if dw is None else dw[:, :, 0, :]),
            db,
        )


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D cross-correlation of x (N, C, D, H, W) with weight (O, C/groups, kD, kH, kW)."""
    return _conv(Conv3d, 3, x, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """Transposed 1-D convolution of x (N, C_in, L), weight (C_in, C_out/groups, k)."""
    return _conv_transpose(
        ConvTranspose1d, 1, x, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """Transposed 3-D convolution of x (N, C_in, D, H, W), weight (C_in, C_out/groups, k...)."""
    return _conv_transpose(
        ConvTranspose3d, 3, x, weight, bias, stride, padding, output_padding, groups, dilation
    )
