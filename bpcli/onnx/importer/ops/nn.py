"""Import of the layer ops: Gemm, MatMul, Conv, ConvTranspose, pooling, Dropout, losses.

Conv and pooling run 1-D and 2-D on the engine's 2-D ops (a 1-D op is the 2-D one with H = 1);
ONNX's asymmetric or auto pads become an explicit Pad in front, so the engine ops only see
symmetric padding. 3-D ops and the rest of pooling are compositions in ``spatial``.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.engine.ops.nn import Dropout
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.spatial import (
    conv3d,
    conv_transpose3d,
    lp_pool_nd,
    max_pool_indices,
    pool_nd,
)
from bpcli.onnx.importer.table import NodeView, register, scalar, wrap


@register("Gemm", since=6)
def gemm(ctx, node: NodeView, inputs):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    ta, tb = node.attr("transA", 0), node.attr("transB", 0)
    if ta:
        a = F.t(a)
    if tb and alpha == 1.0 and beta == 1.0 and (c is None or c.ndim <= 1):
        return F.linear(a, b, c if c is not None and c.numel() == b.shape[0] else None) if (
            c is None or c.numel() == b.shape[0]) else F.add(F.linear(a, b), c)  # fmt: skip
    y = F.matmul(a, F.t(b) if tb else b)
    if alpha != 1.0:
        y = F.mul(y, alpha)
    if c is not None:
        y = F.add(y, F.mul(c, beta) if beta != 1.0 else c)
    return y


@register("MatMul", since=1)
def matmul(ctx, node, inputs):
    a, b = inputs
    if not grad(a, b):
        return wrap(np.matmul(a.data, b.data))
    return F.matmul(a, b)


# -- convolution and pooling ------------------------------------------------------------------


def _spatial_check(node: NodeView) -> str | None:
    k = node.attr("kernel_shape")
    if k is not None and len(k) > 3:
        return f"{len(k)}-D {node.op_type} (only 1-D, 2-D and 3-D are implemented)"
    return None


def _pads(node, in_sizes, kernel, strides, dilations, transpose=False):
    """ONNX pads as ``[(begin, end), ...]`` per spatial axis, auto_pad resolved."""
    n = len(kernel)
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(n):
            eff = (kernel[i] - 1) * dilations[i] + 1
            if transpose:
                total = max(0, strides[i] * (in_sizes[i] - 1) + eff - in_sizes[i] * strides[i])
            else:
                o = -(-in_sizes[i] // strides[i])
                total = max(0, (o - 1) * strides[i] + eff - in_sizes[i])
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * n
    p = node.attr("pads") or [0] * (2 * n)
    return [(p[i], p[i + n]) for i in range(n)]


def _as2d(x, w=None):
    """(N, C, L) -> (N, C, 1, L) so one 2-D engine op serves both ranks."""
    return F.unsqueeze(x, 2), (F.unsqueeze(w, 2) if w is not None else None)


def _pad_spatial(x, pads, value=0.0):
    torch_pad = []
    for b, e in reversed(pads):
        torch_pad += [b, e]
    return F.pad(x, torch_pad, "constant", value) if any(torch_pad) else x


def _conv_geometry(node, x, w, transpose=False):
    n = x.ndim - 2
    kernel = node.attr("kernel_shape") or list(w.shape[2:])
    strides = node.attr("strides") or [1] * n
    dil = node.attr("dilations") or [1] * n
    pads = _pads(node, x.shape[2:], kernel, strides, dil, transpose)
    return n, kernel, strides, dil, pads


@register("Conv", since=1, check=_spatial_check)
def conv(ctx, node, inputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    n, _, strides, dil, pads = _conv_geometry(node, x, w)
    if n not in (1, 2, 3):
        raise node.fail(f"{n}-D Conv (only 1-D, 2-D and 3-D are implemented)")
    if n == 3:
        return conv3d(_pad_spatial(x, pads), w, b, strides, dil, node.attr("group", 1))
    squeeze = n == 1
    if squeeze:
        (x, w), pads, strides, dil = _as2d(x, w), [(0, 0), *pads], [1, *strides], [1, *dil]
    sym = all(p == q for p, q in pads)
    if not sym:
        x, pads = _pad_spatial(x, pads), [(0, 0)] * 2
    y = F.conv2d(x, w, b, tuple(strides), tuple(p for p, _ in pads), tuple(dil),
                 node.attr("group", 1))  # fmt: skip
    return F.squeeze(y, 2) if squeeze else y


@register("ConvTranspose", since=1, check=_spatial_check)
def conv_transpose(ctx, node, inputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    n, kernel, strides, dil, _ = _conv_geometry(node, x, w)
    if n not in (1, 2, 3):
        raise node.fail(f"{n}-D ConvTranspose (only 1-D, 2-D and 3-D are implemented)")
    outpad = node.attr("output_padding") or [0] * n
    full = [strides[i] * (x.shape[2 + i] - 1) + (kernel[i] - 1) * dil[i] + 1 + outpad[i]
            for i in range(n)]  # fmt: skip
    out_shape = node.attr("output_shape")
    if out_shape is not None:
        out_shape = list(out_shape)[-n:]
        auto_lower = node.attr("auto_pad", "NOTSET") == "SAME_LOWER"
        pads = []
        for i in range(n):
            total = full[i] - out_shape[i]
            half = int(total / 2)  # C division (toward zero), as the ONNX reference
            pads.append((total - half, half) if auto_lower else (half, total - half))
    elif node.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for i in range(n):
            total = full[i] - x.shape[2 + i] * strides[i]
            small, big = total // 2, total - total // 2
            upper = node.attr("auto_pad") == "SAME_UPPER"
            pads.append((small, big) if upper else (big, small))
    else:
        pads = _pads(node, x.shape[2:], kernel, strides, dil)
    squeeze = n == 1
    if squeeze:
        (x, w), strides, dil = _as2d(x, w), [1, *strides], [1, *dil]
        pads, outpad = [(0, 0), *pads], [0, *outpad]
    if n == 3:
        y = conv_transpose3d(x, w, strides, dil, node.attr("group", 1))
    else:
        y = F.conv_transpose2d(x, w, None, tuple(strides), 0, 0, node.attr("group", 1),
                               tuple(dil))  # fmt: skip
    # output_padding adds trailing rows that only the bias reaches; pads crop (negative pad)
    y = _pad_spatial(y, [(-p, op - e) for (p, e), op in zip(pads, outpad, strict=True)])
    if b is not None:
        y = F.add(y, F.reshape(b, (-1,) + (1,) * (y.ndim - 2)))
    return F.squeeze(y, 2) if squeeze else y


@register("MaxPool", "AveragePool", since=1, check=_spatial_check)
def pool(ctx, node, inputs):
    x = inputs[0]
    n = x.ndim - 2
    kernel = list(node.attr("kernel_shape"))
    strides = node.attr("strides") or [1] * n
    dil = node.attr("dilations") or [1] * n
    pads = _pads(node, x.shape[2:], kernel, strides, dil)
    ceil = bool(node.attr("ceil_mode", 0))
    is_max = node.op_type == "MaxPool"
    indices = None
    if is_max and len(node.outputs) > 1 and node.outputs[1]:
        indices = max_pool_indices(x.data, kernel, strides, dil, pads, ceil,
                                   node.attr("storage_order", 0))  # fmt: skip
    if n == 3 or (not is_max and any(d != 1 for d in dil)):
        y = pool_nd(x, is_max, kernel, strides, dil, pads, ceil,
                    node.attr("count_include_pad", 0))  # fmt: skip
        return (y, indices) if indices is not None else y
    squeeze = n == 1
    if squeeze:
        x, _ = _as2d(x)
        kernel, strides, dil, pads = [1, *kernel], [1, *strides], [1, *dil], [(0, 0), *pads]
    ok = all(p == q and p <= k // 2 for (p, q), k in zip(pads, kernel, strict=True))
    mask = None
    if not ok:
        if not is_max and not node.attr("count_include_pad", 0):
            mask = _pad_spatial(wrap(np.ones((1, 1, *x.shape[2:]), x.dtype)), pads)
        x = _pad_spatial(x, pads, -np.inf if is_max else 0.0)
        pads = [(0, 0)] * 2
    pad = tuple(p for p, _ in pads)
    if is_max:
        y = F.max_pool2d(x, tuple(kernel), tuple(strides), pad, tuple(dil), ceil)
    else:
        inc = bool(node.attr("count_include_pad", 0))
        y = F.avg_pool2d(x, tuple(kernel), tuple(strides), pad, ceil, inc)
        if mask is not None:
            frac = F.avg_pool2d(mask, tuple(kernel), tuple(strides), 0, ceil, True)
            y = F.div(y, frac)
    y = F.squeeze(y, 2) if squeeze else y
    return (y, indices) if indices is not None else y


@register("GlobalAveragePool", "GlobalMaxPool", since=1)
def global_pool(ctx, node, inputs):
    x = inputs[0]
    axes = tuple(range(2, x.ndim))
    if node.op_type == "GlobalAveragePool":
        return F.mean(x, axes, True)
    return F.amax(x, axes, True)


@register("LpPool", "GlobalLpPool", since=2)
def lp_pool(ctx, node, inputs):
    x, p = inputs[0], node.attr("p", 2)
    if node.op_type == "GlobalLpPool":
        return F.pow(F.sum(F.pow(F.abs(x), float(p)), tuple(range(2, x.ndim)), True), 1.0 / p)
    n = x.ndim - 2
    kernel = list(node.attr("kernel_shape"))
    strides = node.attr("strides") or [1] * n
    dil = node.attr("dilations") or [1] * n
    pads = _pads(node, x.shape[2:], kernel, strides, dil)
    return lp_pool_nd(x, p, kernel, strides, dil, pads, bool(node.attr("ceil_mode", 0)))


# -- dropout and losses ------------------------------------------------------------------------


@register("Dropout", since=1)
def dropout(ctx, node, inputs):
    x = inputs[0]
    if node.opset >= 12:
        ratio = scalar(inputs[1] if len(inputs) > 1 else None, 0.5)
        train = bool(scalar(inputs[2] if len(inputs) > 2 else None, False))
    else:
        ratio, train = node.attr("ratio", 0.5), False
    active = (ctx.training or train) and ratio > 0
    if not active:
        return x, wrap(np.ones(x.shape, bool))
    if node.attr("seed") is None:
        seed = int(ctx.rng().integers(0, 2**63 - 1))
        return Dropout.apply(x, p=float(ratio), seed=seed)
    # A seeded node owns a generator that goes on across calls (as onnxruntime's does), so
    # every training step draws a new mask. It is numpy's MT19937 drawn as the ONNX reference
    # draws it (uniform >= ratio), so a seeded graph drops the same units here as there.
    rng = node.state.setdefault("rng", np.random.RandomState(int(node.attr("seed")) % 2**32))
    keep = rng.uniform(0.0, 1.0, x.shape) >= ratio
    scale = 0.0 if ratio >= 1 else 1.0 / (1.0 - ratio)
    factor = (keep * x.dtype.type(scale)).astype(x.dtype)
    y = F.mul(x, wrap(factor)) if grad(x) else wrap(x.data * factor)
    return y, wrap(keep)


def _ignore(node, target):
    ii = node.attr("ignore_index")
    return -(2**62) if ii is None else int(ii)


@register("SoftmaxCrossEntropyLoss", since=12)
def softmax_xent(ctx, node, inputs):
    x, t = inputs[0], inputs[1]
    w = inputs[2] if len(inputs) > 2 else None
    red = node.attr("reduction", "mean")
    t = wrap(t.data.astype(np.int64))
    loss = F.cross_entropy(x, t, w, _ignore(node, t), red)
    if len(node.outputs) > 1:
        return loss, F.log_softmax(x, 1)
    return loss


@register("NegativeLogLikelihoodLoss", since=12)
def nll(ctx, node, inputs):
    x, t = inputs[0], inputs[1]
    w = inputs[2] if len(inputs) > 2 else None
    t = wrap(t.data.astype(np.int64))
    return F.nll_loss(x, t, w, _ignore(node, t), node.attr("reduction", "mean"))
