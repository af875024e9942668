"""Import of normalisation ops: BatchNormalization, LayerNormalization, GroupNormalization,
InstanceNormalization, LRN, MeanVarianceNormalization.

NOTE on BatchNormalization in train mode: the output is normalised with the batch mean and
the biased batch variance (as PyTorch), but the running variance is updated as the ONNX spec
says, with the *biased* batch variance and ``r = momentum r + (1 - momentum) stat`` (ONNX's
momentum is PyTorch's ``1 - momentum``). PyTorch updates its running_var with the unbiased
variance, so after training steps the two differ by the factor m / (m - 1), m = N * H * W.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.table import NodeView, register, wrap


@register("BatchNormalization", since=6)
def batch_norm(ctx, node: NodeView, inputs):
    x, scale, bias, mean, var = inputs[:5]
    eps, momentum = node.attr("epsilon", 1e-5), node.attr("momentum", 0.9)
    train = ctx.training or bool(node.attr("training_mode", 0))
    if x.ndim < 2:
        raise node.fail(f"input must have at least 2 dims (N, C, ...), got {x.shape}")
    if not train or (node.opset < 14 and len(node.outputs) == 1 and not ctx.training):
        return F.batch_norm(x, mean.data, var.data, scale, bias, False, 0.0, eps)
    y = F.batch_norm(x, None, None, scale, bias, True, 0.0, eps)
    axes = (0, *range(2, x.ndim))
    bm = x.data.mean(axis=axes)
    bv = x.data.var(axis=axes)
    new_mean = (mean.data * momentum + bm * (1 - momentum)).astype(x.dtype)
    new_var = (var.data * momentum + bv * (1 - momentum)).astype(x.dtype)
    ctx.module._update_buffer(node.inputs[3], new_mean)
    ctx.module._update_buffer(node.inputs[4], new_var)
    if node.opset >= 14:
        return y, wrap(new_mean), wrap(new_var)
    return y, wrap(new_mean), wrap(new_var), wrap(bm.astype(x.dtype)), wrap(bv.astype(x.dtype))


@register("LayerNormalization", since=17)
def layer_norm(ctx, node, inputs):
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    axis = node.attr("axis", -1) % x.ndim
    eps = node.attr("epsilon", 1e-5)
    norm_shape = x.shape[axis:]
    exact = scale.shape == norm_shape and (bias is None or bias.shape == norm_shape)
    if exact:
        y = F.layer_norm(x, norm_shape, scale, bias, eps)
    else:
        y = F.mul(F.layer_norm(x, norm_shape, None, None, eps), scale)
        y = F.add(y, bias) if bias is not None else y
    if len(node.outputs) == 1:
        return y
    axes = tuple(range(axis, x.ndim))
    m = x.data.mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(x.data.var(axis=axes, keepdims=True) + eps)
    return y, wrap(m.astype(x.dtype)), wrap(inv.astype(x.dtype))


@register("GroupNormalization", since=18)
def group_norm(ctx, node, inputs):
    x, scale, bias = inputs
    g = node.attr("num_groups")
    c = x.shape[1]
    eps = node.attr("epsilon", 1e-5)
    if node.opset < 21 and scale.shape[0] != c:  # opset 18: one scale per group
        scale, bias = F.repeat_interleave(scale, c // g), F.repeat_interleave(bias, c // g)
    return F.group_norm(x, g, scale, bias, eps)


@register("InstanceNormalization", since=6)
def instance_norm(ctx, node, inputs):
    x, scale, bias = inputs
    return F.group_norm(x, x.shape[1], scale, bias, node.attr("epsilon", 1e-5))


@register("MeanVarianceNormalization", since=9)
def mvn(ctx, node, inputs):
    x = inputs[0]
    axes = tuple(node.attr("axes") or (0, 2, 3))
    centered = F.sub(x, F.mean(x, axes, True))
    std = F.sqrt(F.mean(F.mul(centered, centered), axes, True))
    return F.div(centered, F.add(std, 1e-9))


@register("LRN", since=1)
def lrn(ctx, node, inputs):
    """y = x / (bias + alpha / size * sum of x^2 over a window of ``size`` channels)^beta"""
    x = inputs[0]
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = F.mul(x, x)
    pad = [0, 0] * (x.ndim - 2) + [lo, hi]
    sqp = F.pad(sq, pad)
    c = x.shape[1]
    acc = None
    for k in range(size):
        part = F.getitem(sqp, (slice(None), slice(k, k + c)))
        acc = part if acc is None else F.add(acc, part)
    denom = F.pow(F.add(F.mul(acc, alpha / size), bias), beta)
    return F.div(x, denom)
