"""ONNX emitter of clamp with tensor bounds (``engine/ops/clamp.py``): Max with the lower
bound, then Min with the upper, so a lower bound above the upper gives the upper, as torch.
(Scalar bounds export through ``clip``'s emitter.)"""

from __future__ import annotations

from bpcli.onnx.exporter.ops.elementwise import emitter, same_type


@emitter("clamp_tensor")
def _clamp_tensor(ctx, rec, ins):
    a = rec.attrs
    x, *bounds = same_type(ctx, rec, ins)
    y = x
    if a["has_min"]:
        y = ctx.node("Max", [y, bounds[0]])
    if a["has_max"]:
        y = ctx.node("Min", [y, bounds[-1]])
    return y
