"""ONNX emitters of the spatial ops: conv3d and the 1-D/3-D transposed convolutions (Conv,
ConvTranspose), 3-D pooling (MaxPool, AveragePool) and fold (Col2Im, opset 18).

unfold, max_unpool and the pools that return indices have no emitter: ONNX's MaxPool indices
and MaxUnpool count over the whole tensor, not per (N, C) plane as torch's.
"""

from __future__ import annotations

from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported


@emitter("conv3d")
def _conv3d(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "Conv", list(ins), strides=list(a["stride"]), pads=list(a["padding"]),
        dilations=list(a["dilation"]), group=a["groups"],
        kernel_shape=list(rec.inputs[1].shape[2:]),
    )  # fmt: skip


@emitter("conv_transpose1d", "conv_transpose3d")
def _conv_transpose(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "ConvTranspose", list(ins), strides=list(a["stride"]), pads=list(a["padding"]),
        dilations=list(a["dilation"]), group=a["groups"],
        output_padding=list(a["output_padding"]), kernel_shape=list(rec.inputs[1].shape[2:]),
    )  # fmt: skip


@emitter("max_pool3d")
def _max_pool3d(ctx, rec, ins):
    a = rec.attrs
    return ctx.node(
        "MaxPool", [ins[0]], kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
        pads=list(a["padding"]), dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]),
    )  # fmt: skip


@emitter("avg_pool3d")
def _avg_pool3d(ctx, rec, ins):
    a = rec.attrs
    if a.get("divisor_override"):
        unsupported(rec, "avg_pool3d with divisor_override has no ONNX AveragePool equivalent")
    return ctx.node(
        "AveragePool", [ins[0]], kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
        pads=list(a["padding"]), ceil_mode=int(a["ceil_mode"]),
        count_include_pad=int(a["count_include_pad"]),
    )  # fmt: skip


@emitter("fold")
def _fold(ctx, rec, ins):
    if ctx.opset < 18:
        unsupported(rec, "fold exports as Col2Im, which needs opset 18 or newer")
    a = rec.attrs
    return ctx.node(
        "Col2Im", [ins[0], ctx.ints(a["output_size"]), ctx.ints(a["kernel_size"])],
        dilations=list(a["dilation"]), pads=[*a["padding"], *a["padding"]],
        strides=list(a["stride"]),
    )  # fmt: skip


@emitter("grid_sample")
def _grid_sample(ctx, rec, ins):
    a, r = rec.attrs, rec.inputs[0].ndim - 2
    if ctx.opset < 16 or (r != 2 and ctx.opset < 20):
        unsupported(rec, f"a {r + 2}-D GridSample needs opset {16 if r == 2 else 20} or newer")
    mode = a["mode"]
    if ctx.opset < 20:  # opset 16 spells the modes as torch does
        mode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    return ctx.node(
        "GridSample", list(ins), mode=mode, padding_mode=a["padding_mode"],
        align_corners=int(a["align_corners"]),
    )  # fmt: skip
