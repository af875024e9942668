"""ONNX emitters of the spatial ops: 3-D average pooling (AveragePool) and fold (Col2Im,
opset 18). conv3d, the 1-D/3-D transposed convolutions and max_pool3d share nn.py's emitters.

unfold, max_unpool and the pools that return indices have no emitter: ONNX's MaxPool indices
and MaxUnpool count over the whole tensor, not per (N, C) plane as torch's.
"""

from __future__ import annotations

from bpcli.onnx.exporter.ops.elementwise import emitter, unsupported
from bpcli.onnx.exporter.ops.nn import _avg_pool


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
