"""clamp/clip with tensor bounds (torch.clamp(x, min=t, max=t)); number bounds stay the
``clip`` op of activation.py, which this public function calls for them."""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.activation import clip as clip_numbers
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["clamp", "clip"]


class ClampTensor(Op):
    """y = min(max(x, lo), hi); dx = g where lo <= x <= hi; dlo = g where x < lo < hi;
    dhi = g where x > hi or hi < lo (torch's rule: where min > max, y = max)"""

    name, onnx = "clamp_tensor", "Max"

    def forward(self, x, *bounds, has_min, has_max):
        lo = bounds[0] if has_min else None
        hi = bounds[-1] if has_max else None
        self.x, self.lo, self.hi = x, lo, hi
        y = x if lo is None else np.maximum(x, lo)
        return y if hi is None else np.minimum(y, hi)

    def backward(self, g):
        x, lo, hi = self.x, self.lo, self.hi
        inside = np.ones(x.shape, bool)
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        grads = [g * inside]
        if lo is not None:
            below = x < lo if hi is None else (x < lo) & (lo < hi)
            grads.append(g * below)
        if hi is not None:
            above = x > hi if lo is None else (x > hi) | (hi < lo)
            grads.append(g * above)
        return tuple(grads)


def clamp(x, min=None, max=None) -> Tensor:  # noqa: A002 - torch's keyword names
    """Clamp to [min, max]; bounds are numbers or tensors that broadcast against ``x``."""
    if not isinstance(min, Tensor | np.ndarray) and not isinstance(max, Tensor | np.ndarray):
        return clip_numbers(x, min, max)
    x = lift(x)
    bounds = [lift(b, x) for b in (min, max) if b is not None]
    for b in bounds:
        if b.dtype != x.dtype and b.dtype.kind == "f" and x.dtype.kind == "f":
            raise BpcliError(f"bound dtype {b.dtype} differs from the input's {x.dtype}", "clamp")
    bounds = [b if b.dtype == x.dtype else b.astype(x.dtype) for b in bounds]
    return ClampTensor.apply(x, *bounds, has_min=min is not None, has_max=max is not None)


clip = clamp
