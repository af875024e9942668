"""Axis and shape arguments of the shape and indexing ops, checked once."""

from __future__ import annotations

import numpy as np

from bpcli.errors import BpcliError


def norm_axis(axis, ndim: int, opname: str) -> int:
    """One axis (negatives allowed) as a non-negative int in ``range(ndim)``."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise BpcliError(f"axis must be an int, got {axis!r}", opname)
    if not -ndim <= axis < ndim:
        raise BpcliError(f"axis {axis} is out of range for a tensor with {ndim} dims", opname)
    return int(axis) % ndim


def shape_args(shape) -> tuple:
    """``f(x, 2, 3)`` and ``f(x, (2, 3))`` both as ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def axes_tuple(axis, ndim: int, opname: str) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = tuple(norm_axis(a, ndim, opname) for a in axes)
    if len(set(out)) != len(out):
        raise BpcliError(f"repeated axis in {axis}", opname)
    return out
