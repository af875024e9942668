"""ONNX emitter of einsum (the other linear-algebra functions export through their parts)."""

from __future__ import annotations

from bpcli.onnx.export_ops import emitter


@emitter("einsum")
def _einsum(ctx, rec, ins):
    # the equation attr is already explicit and letters-only (no '...', no implicit output)
    return ctx.node("Einsum", list(ins), equation=rec.attrs["equation"])
