"""Turning Python numbers, lists and arrays into tensors at the API boundary."""

from __future__ import annotations

import numpy as np

from bpcli.engine.dtypes import scalar_dtype
from bpcli.engine.tensor import Tensor


def const(arr: np.ndarray) -> Tensor:
    """A leaf tensor around ``arr`` without copying or dtype rules (internal fast path)."""
    t = Tensor.__new__(Tensor)
    t._data, t.grad, t._op, t._idx, t._version, t._hooks = arr, None, None, 0, 0, None
    t._requires_grad = False
    return t


_SCALARS = (int, float, bool, complex, np.generic)


def lift(x, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; a Python/numpy scalar beside ``like`` takes the dtype torch gives
    it there (``like``'s own unless the scalar's category is higher: see ``dtypes``)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, _SCALARS):
        return const(np.asarray(x, dtype=scalar_dtype(x, like.dtype)))
    return Tensor(x)


def pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands of a binary op as tensors, scalars adopting the other side's dtype."""
    if not isinstance(a, Tensor):
        a = lift(a, b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = lift(b, a)
    return a, b
