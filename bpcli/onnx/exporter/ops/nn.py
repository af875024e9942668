"""ONNX emitters of the layer ops: linear, conv, pooling, norms, dropout, embedding, losses.

Recurrent ops are in ``rnn.py``. Importing the package ``exporter.ops`` fills ``EMITTERS``.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.ops.pool import _bins
from bpcli.onnx.exporter.ops.elementwise import EMITTERS, dtype_of, emitter, unsupported

__all__ = ["EMITTERS"]


@emitter("linear")
def _linear(ctx, rec, ins):
    x, w = ins[0], ins[1]
    bias = [ins[2]] if len(ins) > 2 else []
    if rec.inputs[0].ndim == 2:
        return ctx.node("Gemm", [x, w, *bias], transB=1)
    y = ctx.node("MatMul", [x, ctx.node("Transpose", [w], perm=[1, 0])])
    return ctx.node("Add", [y, bias[0]]) if bias else y


@emitter("conv1d", "conv2d", "conv3d")
def _conv(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "Conv", list(ins), strides=list(a["stride"]), pads=list(a["padding"]),
        dilations=list(a["dilation"]), group=a["groups"],
        kernel_shape=list(rec.inputs[1].shape[2:]),
    )  # fmt: skip


@emitter("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _conv_transpose(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "ConvTranspose", list(ins), strides=list(a["stride"]), pads=list(a["padding"]),
        dilations=list(a["dilation"]), group=a["groups"],
        output_padding=list(a["output_padding"]), kernel_shape=list(rec.inputs[1].shape[2:]),
    )  # fmt: skip


@emitter("max_pool1d", "max_pool2d", "max_pool3d")
def _max_pool(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "MaxPool", [ins[0]], kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
        pads=list(a["padding"]), dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]),
    )  # fmt: skip


@emitter("avg_pool1d", "avg_pool2d")
def _avg_pool(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "AveragePool", [ins[0]], kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
        pads=list(a["padding"]), ceil_mode=int(a["ceil_mode"]),
        count_include_pad=int(a["count_include_pad"]),
    )  # fmt: skip


@emitter("global_avg_pool2d")
def _global_avg_pool(ctx, rec, ins):
    return ctx.node("GlobalAveragePool", [ins[0]])


@emitter("adaptive_avg_pool2d")
def _adaptive_avg_pool(ctx, rec, ins):
    # unequal bins: the engine's own separable form, y = Ph x Pw^T, as one Einsum
    (h, w), (oh, ow), dt = rec.inputs[0].shape[2:], rec.attrs["output_size"], dtype_of(rec)
    ph, pw = ctx.const(_bins(h, oh, dt), "bins_h"), ctx.const(_bins(w, ow, dt), "bins_w")
    return ctx.node("Einsum", [ph, ins[0], pw], equation="ih,nchw,jw->ncij")


# -- normalisation --------------------------------------------------------------------------


@emitter("batch_norm")
def _batch_norm(ctx, rec, ins):
    a = rec.attrs
    if not a["training"]:
        return ctx.node("BatchNormalization", list(ins), epsilon=a["eps"])
    if ctx.opset < 14:
        unsupported(rec, "a training-mode BatchNormalization needs opset 14 or newer")
    names = []
    for i in (3, 4):  # the running statistics, updated: extra graph outputs
        base = ctx.params.get(id(rec.inputs[i]), f"batch_norm_{'mean' if i == 3 else 'var'}")
        names.append(ctx.fresh(f"{base}_updated"))
        ctx.extra_outputs.append((names[-1], rec.inputs[i].dtype, list(rec.inputs[i].shape)))
    y = ctx.fresh("batch_norm")
    # ONNX: running = running * momentum + batch * (1 - momentum); torch: the other way round
    ctx.node("BatchNormalization", list(ins), outputs=[y, *names], epsilon=a["eps"],
             momentum=1.0 - a["momentum"], training_mode=1)  # fmt: skip
    return y


@emitter("layer_norm")
def _layer_norm(ctx, rec, ins):
    x, w, b = ins[0], ins[1], ins[2]
    nd, k, eps = rec.inputs[0].ndim, len(rec.attrs["normalized_shape"]), rec.attrs["eps"]
    if ctx.opset >= 17:
        return ctx.node("LayerNormalization", [x, w, b], axis=-k, epsilon=eps)
    axes = list(range(nd - k, nd))
    d = ctx.node("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
    var = ctx.reduce("ReduceMean", ctx.node("Mul", [d, d]), axes, True)
    std = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.scalar(eps, dtype_of(rec))])])
    return ctx.node("Add", [ctx.node("Mul", [ctx.node("Div", [d, std]), w]), b])


@emitter("group_norm")
def _group_norm(ctx, rec, ins):
    x, w, b = ins[0], ins[1], ins[2]
    shape, g, dt = rec.inputs[0].shape, rec.attrs["num_groups"], dtype_of(rec)
    # (N, G, rest) normalised per (n, g) row is InstanceNormalization with unit scale
    grouped = ctx.reshape(x, [0, g, -1])
    normed = ctx.node("InstanceNormalization", [grouped, ctx.const(np.ones(g, dt), "ones"),
                      ctx.const(np.zeros(g, dt), "zeros")], epsilon=rec.attrs["eps"])  # fmt: skip
    y = ctx.node("Reshape", [normed, ctx.node("Shape", [x])])
    per_channel = [shape[1]] + [1] * (len(shape) - 2)
    w, b = ctx.reshape(w, per_channel), ctx.reshape(b, per_channel)
    return ctx.node("Add", [ctx.node("Mul", [y, w]), b])


# -- dropout, embedding, losses -------------------------------------------------------------


@emitter("dropout")
def _dropout(ctx, rec, ins):
    if not ctx.training:  # only reached for an explicit training=True call in eval export
        return [ctx.node("Identity", [ins[0]]), None]
    ratio = ctx.scalar(rec.attrs["p"], dtype_of(rec))
    on = ctx.const(np.array(True), "training_mode")
    return ctx.node("Dropout", [ins[0], ratio, on], n_out=2)


@emitter("embedding")
def _embedding(ctx, rec, ins):
    return ctx.node("Gather", [ins[0], ins[1]], axis=0)


@emitter("cross_entropy")
def _cross_entropy(ctx, rec, ins):
    a = rec.attrs
    if a["label_smoothing"]:
        unsupported(rec, "label_smoothing has no ONNX SoftmaxCrossEntropyLoss form")
    return ctx.node("SoftmaxCrossEntropyLoss", list(ins), reduction=a["reduction"],
                    ignore_index=a["ignore_index"])  # fmt: skip


@emitter("nll_loss")
def _nll_loss(ctx, rec, ins):
    a = rec.attrs
    return ctx.node("NegativeLogLikelihoodLoss", list(ins), reduction=a["reduction"],
                    ignore_index=a["ignore_index"])  # fmt: skip
