"""ONNX emitters of einsum and embedding_bag (the other linear-algebra functions export
through their parts)."""

from __future__ import annotations

import numpy as np

from bpcli.onnx.exporter.context import onnx_dtype
from bpcli.onnx.exporter.ops.elementwise import dtype_of, emitter, unsupported


@emitter("einsum")
def _einsum(ctx, rec, ins):
    # the equation attr is already explicit and letters-only (no '...', no implicit output)
    return ctx.node("Einsum", list(ins), equation=rec.attrs["equation"])


@emitter("embedding_bag")
def _embedding_bag(ctx, rec, ins):
    """A 2-D input (one bag per row): Gather the rows (B, N, D), reduce over N; padding
    entries masked out (a mean counts the others, a bag of padding only is zeros)."""
    a = rec.attrs
    if a["n_offsets"]:
        unsupported(rec, "embedding_bag with offsets has no ONNX form here: give a 2-D input "
                         "(one bag per row)")  # fmt: skip
    dt = dtype_of(rec, 0)
    rows = ctx.node("Gather", [ins[0], ins[1]], axis=0)
    if len(ins) > 2:  # per-sample weights (B, N)
        rows = ctx.node("Mul", [rows, ctx.unsqueeze(ins[2], [2])])
    mode, pad = a["mode"], a["padding_idx"]
    if pad is None:
        op = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}[mode]
        return ctx.reduce(op, rows, [1], False)
    pad_c = ctx.scalar(pad, dtype_of(rec, 1))
    keep = ctx.unsqueeze(ctx.node("Not", [ctx.node("Equal", [ins[1], pad_c])]), [2])
    keep_f = ctx.node("Cast", [keep], to=onnx_dtype(dt))
    count = ctx.reduce("ReduceSum", keep_f, [1], False)  # (B, 1)
    if mode == "max":
        masked = ctx.node("Where", [keep, rows, ctx.scalar(-np.inf, dt)])
        top = ctx.reduce("ReduceMax", masked, [1], False)
        some = ctx.node("Greater", [count, ctx.scalar(0, dt)])
        return ctx.node("Where", [some, top, ctx.scalar(0, dt)])
    total = ctx.reduce("ReduceSum", ctx.node("Mul", [rows, keep_f]), [1], False)
    if mode == "sum":
        return total
    return ctx.node("Div", [total, ctx.node("Max", [count, ctx.scalar(1, dt)])])
