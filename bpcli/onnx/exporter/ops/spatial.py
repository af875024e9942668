"""ONNX emitters of the spatial ops: 3-D average pooling (AveragePool), fold (Col2Im,
opset 18), unfold (a Gather of each block's pixels from the padded, flattened image), the max
pools that return indices and max_unpool. conv3d, the 1-D/3-D transposed convolutions and
max_pool3d share nn.py's emitters.

ONNX's MaxPool indices and MaxUnpool count over the whole (N, C, ...) tensor, torch's per
(N, C) plane: the indices are taken modulo the plane's size on the way out of MaxPool and
offset by each plane's start on the way into MaxUnpool.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported
from bpcli.onnx.exporter.ops.nn import _avg_pool, _max_pool


@emitter("avg_pool3d")
def _avg_pool3d(ctx, rec, ins):
    a = rec.attrs
    if a.get("divisor_override"):
        unsupported(rec, "avg_pool3d with divisor_override has no ONNX AveragePool equivalent")
    return _avg_pool(ctx, rec, ins)


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


@emitter("unfold")
def _unfold(ctx, rec, ins):
    a, x = rec.attrs, rec.inputs[0]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a[k] for k in ("kernel_size", "stride", "padding",
                                                              "dilation"))  # fmt: skip
    lead = x.ndim - 3  # 1 for (N, C, H, W), 0 for an unbatched (C, H, W)
    c, h, w = x.shape[-3:]
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = a["blocks"]
    # pixel (i, j) of block (r, s) sits at row r*sh + i*dh, column s*sw + j*dw of the padding
    rows = np.arange(oh)[None, :] * sh + np.arange(kh)[:, None] * dh  # (kh, oh)
    cols = np.arange(ow)[None, :] * sw + np.arange(kw)[:, None] * dw  # (kw, ow)
    flat = rows[:, None, :, None] * wp + cols[None, :, None, :]  # (kh, kw, oh, ow)
    idx = ctx.const(flat.reshape(kh * kw, oh * ow).astype(np.int64), "unfold_idx")
    pads = [0] * (lead + 1) + [ph, pw]
    padded = (
        ctx.node("Pad", [ins[0], ctx.ints(pads + pads)], mode="constant") if ph or pw else ins[0]
    )
    plane = ctx.reshape(padded, [0] * (lead + 1) + [hp * wp])
    blocks = ctx.node("Gather", [plane, idx], axis=lead + 1)  # (..., C, kh*kw, L)
    return ctx.reshape(blocks, [0] * lead + [c * kh * kw, oh * ow])


@emitter("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices")
def _max_pool_with_indices(ctx, rec, ins):
    vals = _max_pool(ctx, rec, ins)
    node = ctx.nodes[-1]  # the MaxPool just written, given its optional Indices output
    idx = ctx.fresh("maxpool_idx")
    node.output.append(idx)
    plane = math.prod(rec.inputs[0].shape[2:])
    return [vals, ctx.node("Mod", [idx, ctx.ints([plane])])]


@emitter("max_unpool")
def _max_unpool(ctx, rec, ins):
    x, size = rec.inputs[0], tuple(rec.attrs["output_size"])
    n_c = ctx.node("Slice", [ctx.node("Shape", [ins[0]]), ctx.ints([0]), ctx.ints([2])])
    planes = ctx.reduce("ReduceProd", n_c, [0], False)
    zero, one = ctx.const(np.array(0, np.int64)), ctx.const(np.array(1, np.int64))
    first = ctx.node("Mul", [ctx.node("Range", [zero, planes, one]),
                             ctx.const(np.array(math.prod(size), np.int64))])  # fmt: skip
    first = ctx.reshape(first, [-1, x.shape[1]] + [1] * len(size))
    idx = (
        ins[1]
        if rec.inputs[1].dtype == np.int64
        else ctx.node("Cast", [ins[1]], to=onnx_dtype(np.int64))
    )
    shape = ctx.node("Concat", [n_c, ctx.ints(size)], axis=0)
    ones = [1] * len(size)
    return ctx.node("MaxUnpool", [ins[0], ctx.node("Add", [idx, first]), shape],
                    kernel_shape=ones, strides=ones)  # fmt: skip
