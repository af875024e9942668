"""Convolutions over NCHW (and NCL) arrays: im2col + one BLAS product per group.

Weights are laid out as in PyTorch and ONNX: ``(O, C/groups, kh, kw)`` for convolution and
``(C_in, C_out/groups, kh, kw)`` for the transposed convolution. Attributes are plain tuples:
``stride``, ``dilation`` (one entry per spatial axis) and ``padding`` in ONNX ``pads`` order
(all begins, then all ends), so asymmetric 'same' padding is exact.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op, strict_float
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.conv import col2im, im2col

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


# -- argument checking ------------------------------------------------------------------------


def ntuple(v, n: int, what: str, opname: str, low: int = 1) -> tuple[int, ...]:
    """An int or a length-n sequence of ints, each >= low, as a tuple."""
    vals = (v,) * n if isinstance(v, int | np.integer) else tuple(v)
    if len(vals) != n or not all(isinstance(a, int | np.integer) and a >= low for a in vals):
        raise BpcliError(f"{what} must be an int >= {low} or {n} of them, got {v!r}", opname)
    return tuple(int(a) for a in vals)


def out_size(n_in: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return (n_in + p0 + p1 - d * (k - 1) - 1) // s + 1


def conv_padding(padding, ks, stride, dilation, opname: str) -> tuple[int, ...]:
    """torch's padding argument (int, tuple, 'same', 'valid') as ONNX pads (begins, ends)."""
    nd = len(ks)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * nd)
        if padding != "same":
            raise BpcliError(
                f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}", opname
            )
        if any(s != 1 for s in stride):
            raise BpcliError(f"padding='same' needs stride 1, got stride={stride}", opname)
        total = [d * (k - 1) for k, d in zip(ks, dilation, strict=True)]
        # torch puts the odd extra pad at the end (bottom/right)
        return tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    p = ntuple(padding, nd, "padding", opname, low=0)
    return p + p


def _check_conv(opname, x, w, groups, nd, transposed=False) -> None:
    if x.ndim != nd + 2:
        raise BpcliError(
            f"input of shape {x.shape} must have {nd + 2} dims "
            f"(N, C, {('L', 'H, W', 'D, H, W')[nd - 1]})",
            opname,
        )
    if w.ndim != nd + 2:
        raise BpcliError(f"weight of shape {w.shape} must have {nd + 2} dims", opname)
    if not isinstance(groups, int | np.integer) or groups < 1:
        raise BpcliError(f"groups must be a positive int, got {groups!r}", opname)
    c_in = w.shape[0] if transposed else w.shape[1] * groups
    c_out = w.shape[1] * groups if transposed else w.shape[0]
    if x.shape[1] % groups or c_out % groups or (transposed and w.shape[0] % groups):
        raise BpcliError(
            f"groups={groups} must divide the input channels ({x.shape[1]}) and the output "
            f"channels ({c_out}); weight {w.shape}",
            opname,
        )
    if x.shape[1] != c_in:
        raise BpcliError(
            f"input {x.shape} has {x.shape[1]} channels but weight {w.shape} with groups={groups} "
            f"expects {c_in}",
            opname,
        )


def _check_bias(opname, b, c_out) -> None:
    if b is not None and b.shape != (c_out,):
        raise BpcliError(f"bias of shape {b.shape} must have shape ({c_out},)", opname)


# -- the convolution --------------------------------------------------------------------------


class Conv2d(Op):
    """y = W * x + b (cross-correlation); dx = col2im(W^T g), dW = g cols^T, db = sum(g)"""

    name, onnx = "conv2d", "Conv"

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        if b is not None:
            w, b = strict_float(self.name, w, b)
        x, w = strict_float(self.name, x, w)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        n, c, h, wd = x.shape
        o, _cg, kh, kw = w.shape
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = stride, dilation, padding
        oh, ow = out_size(h, kh, sh, pt, pb, dh), out_size(wd, kw, sw, pl, pr, dw)
        if oh < 1 or ow < 1:
            raise BpcliError(
                f"kernel {kh}x{kw} (dilation {dilation}) is larger than the padded input "
                f"{h + pt + pb}x{wd + pl + pr} of input {x.shape}",
                self.name,
            )
        cols = im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow).reshape(c * kh * kw, -1)
        w2 = w.reshape(o, -1)
        y = _grouped(lambda wi, ci: wi @ ci, groups, w2, cols)
        self.cols, self.w2, self.shape = cols, w2, (x.shape, w.shape, oh, ow)
        self.geom = (sh, sw, pt, pl, dh, dw)
        y = y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
        out = np.empty(y.shape, dtype=y.dtype)
        if b is None:
            np.copyto(out, y)
        else:
            np.add(y, b.reshape(o, 1, 1), out=out)
        return out

    def backward(self, g):
        (xs, ws, oh, ow), groups = self.shape, self.attrs["groups"]
        o = ws[0]
        g2 = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)
        dx = dw_ = db = None
        if self.needs[0]:
            dcols = _grouped(lambda wi, gi: wi.T @ gi, groups, self.w2, g2)
            dcols = dcols.reshape(xs[1] * ws[2] * ws[3], xs[0], oh, ow)
            dx = col2im(dcols, xs[1], xs[2], xs[3], ws[2], ws[3], *self.geom)
        if self.needs[1]:
            dw_ = _grouped(_a_bt, groups, g2, self.cols).reshape(ws)
        if len(self.needs) > 2 and self.needs[2]:
            db = g.sum(axis=(0, 2, 3))
        return dx, dw_, db


def _a_bt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T over a long shared axis (a weight gradient): OpenBLAS splits the rows of its
    first operand between threads, so the operand with more rows goes first (measured 2-35%
    faster for conv shapes where out channels < in channels * kernel size)."""
    return a @ b.T if len(a) >= len(b) else (b @ a.T).T


def _grouped(fn, groups, *arrays):
    """fn applied per group to the row blocks of each array, results stacked along rows."""
    if groups == 1:
        return fn(*arrays)
    parts = []
    for gi in range(groups):
        parts.append(
            fn(*(a[gi * (len(a) // groups) : (gi + 1) * (len(a) // groups)] for a in arrays))
        )
    return np.concatenate(parts, axis=0)


class Conv1d(Conv2d):
    """y = W * x + b over (N, C, L); as conv2d with H = 1"""

    name, onnx = "conv1d", "Conv"

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        return super().forward(
            x[:, :, None, :],
            w[:, :, None, :],
            b,
            stride=(1, *stride),
            padding=(0, padding[0], 0, padding[1]),
            dilation=(1, *dilation),
            groups=groups,
        )[:, :, 0, :]

    def backward(self, g):
        dx, dw, db = super().backward(g[:, :, None, :])
        return (
            (None if dx is None else dx[:, :, 0, :]),
            (None if dw is None else dw[:, :, 0, :]),
            db,
        )


def _conv(cls, nd, x, weight, bias, stride, padding, dilation, groups):
    opname = cls.name
    x, weight = lift(x), lift(weight, x)
    _check_conv(opname, x, weight, groups, nd)
    ks = weight.shape[2:]
    stride = ntuple(stride, nd, "stride", opname)
    dilation = ntuple(dilation, nd, "dilation", opname)
    pads = conv_padding(padding, ks, stride, dilation, opname)
    attrs = dict(stride=stride, padding=pads, dilation=dilation, groups=int(groups))
    if bias is None:
        return cls.apply(x, weight, **attrs)
    bias = lift(bias, weight)
    _check_bias(opname, bias, weight.shape[0])
    return cls.apply(x, weight, bias, **attrs)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (O, C/groups, kH, kW), as torch's."""
    return _conv(Conv2d, 2, x, weight, bias, stride, padding, dilation, groups)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D cross-correlation of x (N, C, L) with weight (O, C/groups, k), as torch's."""
    return _conv(Conv1d, 1, x, weight, bias, stride, padding, dilation, groups)


# -- the transposed convolution ---------------------------------------------------------------


class ConvTranspose2d(Op):
    """y = col2im(W^T x) + b; dx = W im2col(g), dW = x im2col(g)^T, db = sum(g)"""

    name, onnx = "conv_transpose2d", "ConvTranspose"

    def forward(self, x, w, b=None, *, stride, padding, output_padding, groups, dilation):
        if b is not None:
            w, b = strict_float(self.name, w, b)
        x, w = strict_float(self.name, x, w)
        n, c, h, wd = x.shape
        _, cog, kh, kw = w.shape
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = stride, dilation, padding
        oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + output_padding[0] + 1
        ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + output_padding[1] + 1
        if oh < 1 or ow < 1:
            raise BpcliError(f"output size {oh}x{ow} of input {x.shape} is not positive", self.name)
        xg = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, -1)
        w2 = np.ascontiguousarray(w).reshape(c, -1)
        cols = _grouped(lambda wi, xi: wi.T @ xi, groups, w2, xg)
        cols = cols.reshape(cog * groups * kh * kw, n, h, wd)
        y = col2im(cols, cog * groups, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw)
        self.xg, self.w2, self.shape = xg, w2, (x.shape, w.shape)
        self.geom = (sh, sw, pt, pl, dh, dw)
        if b is not None:
            y += b.reshape(-1, 1, 1)
        return y

    def backward(self, g):
        (xs, ws), groups = self.shape, self.attrs["groups"]
        sh, sw, pt, pl, dh, dw = self.geom
        g = np.ascontiguousarray(g)
        gcols = im2col(g, ws[2], ws[3], sh, sw, pt, pl, dh, dw, xs[2], xs[3]).reshape(
            g.shape[1] * ws[2] * ws[3], -1
        )
        dx = dw_ = db = None
        if self.needs[0]:
            dx = _grouped(lambda wi, gi: wi @ gi, groups, self.w2, gcols)
            dx = dx.reshape(xs[1], xs[0], xs[2], xs[3]).transpose(1, 0, 2, 3)
        if self.needs[1]:
            dw_ = _grouped(_a_bt, groups, self.xg, gcols).reshape(ws)
        if len(self.needs) > 2 and self.needs[2]:
            db = g.sum(axis=(0, 2, 3))
        return dx, dw_, db


def conv_transpose2d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """Transposed 2-D convolution of x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW)."""
    return _conv_transpose(
        ConvTranspose2d, 2, x, weight, bias, stride, padding, output_padding, groups, dilation
    )


def _conv_transpose(cls, nd, x, weight, bias, stride, padding, output_padding, groups, dilation):
    opname = cls.name
    x, weight = lift(x), lift(weight, x)
    _check_conv(opname, x, weight, groups, nd, transposed=True)
    stride = ntuple(stride, nd, "stride", opname)
    dilation = ntuple(dilation, nd, "dilation", opname)
    p = ntuple(padding, nd, "padding", opname, low=0)
    op = ntuple(output_padding, nd, "output_padding", opname, low=0)
    if any(o >= max(s, d) for o, s, d in zip(op, stride, dilation, strict=True)):
        raise BpcliError(
            f"output_padding {op} must be smaller than stride {stride} or dilation {dilation}",
            opname,
        )
    attrs = dict(
        stride=stride, padding=p + p, output_padding=op, groups=int(groups), dilation=dilation
    )
    if bias is None:
        return cls.apply(x, weight, **attrs)
    bias = lift(bias, weight)
    _check_bias(opname, bias, weight.shape[1] * groups)
    return cls.apply(x, weight, bias, **attrs)
