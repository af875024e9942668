"""Creation functions and the top-level API that ``import bpcli as bp`` exposes."""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const
from bpcli.engine.dtypes import get_default_dtype, set_default_dtype
from bpcli.engine.op import OPS
from bpcli.engine.ops import elementwise, join
from bpcli.engine.random import default_rng, manual_seed
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "OPS",
    "Tensor",
    "arange",
    "concat",
    "full",
    "get_default_dtype",
    "manual_seed",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "set_default_dtype",
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
    """A new leaf tensor. Arrays keep their dtype; Python floats/lists take the default dtype
    (float32), integers int64, booleans bool; ``dtype`` (a numpy dtype) overrides."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _dtype(dtype) -> np.dtype:
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), _dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), _dtype(dtype)), requires_grad)


def _value_dtype(value) -> np.dtype:
    """The dtype torch infers from a fill value: bool, int64 or the default float dtype."""
    if isinstance(value, Tensor | np.ndarray):
        return np.asarray(value).dtype
    if isinstance(value, bool | np.bool_):
        return np.dtype(np.bool_)
    if isinstance(value, int | np.integer):
        return np.dtype(np.int64)
    return get_default_dtype()


def full(shape, value, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``value``; the dtype follows the value (as torch)."""
    if isinstance(value, Tensor):
        value = value.data
    dt = _value_dtype(value) if dtype is None else np.dtype(dtype)
    return Tensor(np.full(_shape((shape,)), value, dt), requires_grad)


def zeros_like(x: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(x.shape, dtype or x.dtype), requires_grad)


def ones_like(x: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(x.shape, dtype or x.dtype), requires_grad)


def arange(*args, dtype=None) -> Tensor:
    """torch.arange: int64 when start, end and step are all ints, else the default dtype."""
    if not args:
        raise BpcliError("arange needs an end (arange(end) or arange(start, end, step))", "arange")
    if dtype is None:
        ints = all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in args)
        dtype = np.int64 if ints else get_default_dtype()
    # NOTE: computed in float64 and cast, so a float32 range has torch's element count.
    return const(np.arange(*args, dtype=np.float64 if np.dtype(dtype).kind == "f" else None)
                 .astype(dtype, copy=False))  # fmt: skip


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
