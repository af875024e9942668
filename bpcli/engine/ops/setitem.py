"""``x[index] = value`` as a recorded op, so PyTorch code that writes into a tensor of the graph
(``y = x.clone(); y[y > 0] = 0``, ``h[:, t] = step(h[:, t - 1])``) gets its gradient, as torch's.

``Tensor.__setitem__`` runs it through the in-place machinery (``engine/inplace.py``): the
tensor takes the new node and its version moves. The index follows ``getitem``'s rules (ints
taken first; an index tensor, a mask made from the input say, stays an input of the op).
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.index import _build, _parse, _take, write
from bpcli.engine.tensor import Tensor

__all__ = ["index_assign"]


class SetItem(Op):
    """y = x with y[index] = value; dx = g with the written places zeroed, dvalue = g[index]
    (summed down to value's shape)"""

    name, onnx, saves_inputs = "setitem", None, False

    def forward(self, x, value, *arrays, index):
        value = value.astype(x.dtype, copy=False)
        self.steps = _build(index, arrays)
        y = x.copy()
        write(y, self.steps, value)
        return y

    def backward(self, g):
        dx = None
        if self.needs[0]:
            dx = g.copy()
            write(dx, self.steps, 0)
        dv = np.asarray(_take(g, self.steps)) if self.needs[1] else None
        return (dx, dv) + (None,) * (len(self.parents) - 2)


def index_assign(x, index, value) -> Tensor:
    """``x`` with ``x[index] = value``, out of place (``Tensor.__setitem__`` records it)."""
    x, value = lift(x), lift(value)
    spec, arrays = _parse(index)
    return SetItem.apply(x, value, *arrays, index=spec)
