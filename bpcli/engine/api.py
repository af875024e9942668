"""Creation functions and the top-level API that ``import bpcli as bp`` exposes."""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const
from bpcli.engine.op import OPS
from bpcli.engine.ops import elementwise, join
from bpcli.engine.random import default_rng, manual_seed
from bpcli.engine.tensor import Tensor

__all__ = [
    "OPS",
    "Tensor",
    "arange",
    "concat",
    "full",
    "manual_seed",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]  # fmt: skip


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (numpy's ``concatenate``)."""
    return join.concat(tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return join.stack(tensors, axis=axis)


where = elementwise.where


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new leaf tensor. Float arrays keep their dtype; Python floats/lists become float32,
    integers int64, booleans bool; ``dtype`` (a numpy dtype) overrides."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _dtype(dtype) -> np.dtype:
    return np.dtype(np.float32 if dtype is None else dtype)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), _dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), _dtype(dtype)), requires_grad)


def full(shape, value, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(_shape((shape,)), value, _dtype(dtype)), requires_grad)


def zeros_like(x: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(x.shape, dtype or x.dtype), requires_grad)


def ones_like(x: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(x.shape, dtype or x.dtype), requires_grad)


def arange(*args, dtype=None) -> Tensor:
    arr = np.arange(*args)
    return const(arr if dtype is None else arr.astype(dtype))


def randn(*shape, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    rng = generator or default_rng()
    return Tensor(rng.standard_normal(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    rng = generator or default_rng()
    return Tensor(rng.random(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def _shape(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)
