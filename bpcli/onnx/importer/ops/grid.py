"""Import of GridSample (opsets 16-22) and AffineGrid (20) onto the engine's grid_sample and
affine_grid (``bpcli/engine/ops/grid.py``); this module only reads the ONNX attributes."""

from __future__ import annotations

import numpy as np

from bpcli.engine.ops.grid import affine_grid as _affine_grid
from bpcli.engine.ops.grid import sample_grid
from bpcli.onnx.importer.table import NodeView, ints, register, wrap
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.resize import _check, _round_to

_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
               "nearest": "nearest"}  # fmt: skip


@register("GridSample", since=16)
def grid_sample(ctx, node: NodeView, inputs):
    x, grid = inputs
    mode = _check(node, "mode", node.attr("mode", "linear"), tuple(_GRID_MODES))
    mode = _GRID_MODES[mode]
    pad = _check(node, "padding_mode", node.attr("padding_mode", "zeros"),
                 ("zeros", "border", "reflection"))  # fmt: skip
    align = bool(node.attr("align_corners", 0))
    r = x.ndim - 2
    if r < 1 or grid.ndim != r + 2 or grid.shape[-1] != r or grid.shape[0] != x.shape[0]:
        raise node.fail(f"grid of shape {grid.shape} does not fit X of shape {x.shape}")
    if x.dtype.kind != "f":  # integer images: sample in float64, round back
        return _round_to(grid_sample(ctx, node, [wrap(x.data.astype(np.float64)), grid]), x.dtype)
    x = x if grad(x) else wrap(x.data)
    return sample_grid(x, grid if grad(grid) else wrap(grid.data), mode, pad, align)


@register("AffineGrid", since=20)
def affine_grid(ctx, node, inputs):
    theta, size = inputs[0], ints(inputs[1])
    r = len(size) - 2
    if r not in (2, 3) or theta.shape != (size[0], r, r + 1):
        raise node.fail(f"theta of shape {theta.shape} does not fit size {size}")
    return _affine_grid(theta, size, bool(node.attr("align_corners", 0)))
