"""Tensor methods torch has beyond the math: dtype casts (``.int()``, ``.to()``), device,
``grad_fn``, ``new_*`` constructors, window ``unfold`` and ``contiguous``; bound by ``bind()``.

Kept out of ``tensor.py`` so the Tensor class stays the core; each method is a thin function
of the functional API or of numpy.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine import dtype_names as dtypes
from bpcli.engine.ops.elementwise import astype, clone
from bpcli.engine.ops.shape_more import contiguous, unfold_dim
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


class GradFn:
    """``t.grad_fn``: the op node that made ``t``; ``name()`` as torch spells it."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op

    def name(self) -> str:
        return f"{type(self.op).__name__}Backward0"

    @property
    def next_functions(self) -> tuple:
        return tuple(
            (GradFn(p_op) if p_op is not None else None, p_idx) for p_op, p_idx in self.op.edges
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, GradFn) and other.op is self.op

    def __hash__(self):
        return id(self.op)

    def __repr__(self) -> str:
        return f"<{self.name()} ({self.op.name})>"


def _cast(dtype):
    return lambda self: astype(self, dtype)


def to(self, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False):
    """``.to(dtype)``, ``.to("cpu")``, ``.to(device, dtype)``, ``.to(other)`` (its dtype)."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype if dtype is None else dtype
        elif dtypes.is_device(a):
            device = a
        else:
            dtype = a
    if device is not None:
        dtypes.device(device)  # anything but the CPU is an error
    out = self if dtype is None else astype(self, dtypes.as_dtype(dtype, "to"))
    return clone(out) if copy and out is self else out


def type_as(self, other):
    return astype(self, other.dtype)


def _size(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _new(fill):
    def new(self, *size, dtype=None, requires_grad: bool = False, device=None):
        if device is not None:
            dtypes.device(device)
        dt = self.dtype if dtype is None else dtypes.as_dtype(dtype, "new")
        return Tensor(fill(_size(size), dt), requires_grad=requires_grad)

    return new


def new_full(self, size, fill_value, dtype=None, requires_grad: bool = False, device=None):
    if device is not None:
        dtypes.device(device)
    dt = self.dtype if dtype is None else dtypes.as_dtype(dtype, "new_full")
    return Tensor(np.full(_size((size,)), fill_value, dt), requires_grad=requires_grad)


def new_tensor(self, data, dtype=None, requires_grad: bool = False, device=None):
    """A copy of ``data`` with this tensor's dtype unless ``dtype`` is given (as torch)."""
    if device is not None:
        dtypes.device(device)
    dt = self.dtype if dtype is None else dtypes.as_dtype(dtype, "new_tensor")
    data = data._data if isinstance(data, Tensor) else data
    return Tensor(np.array(data, dtype=dt), requires_grad=requires_grad)


def _cuda(self, *a, **k):
    raise BpcliError("CUDA is not available: bpcli runs on the CPU", "cuda")


METHODS = {
    "int": _cast(dtypes.int32), "long": _cast(dtypes.int64), "short": _cast(dtypes.int16),
    "char": _cast(dtypes.int8), "byte": _cast(dtypes.uint8), "half": _cast(dtypes.float16),
    "float": _cast(dtypes.float32), "double": _cast(dtypes.float64),
    "bool": _cast(dtypes.bool), "to": to, "type_as": type_as,
    "cpu": lambda self: self, "cuda": _cuda,
    "dim": lambda self: self._data.ndim, "ndimension": lambda self: self._data.ndim,
    "nelement": lambda self: self._data.size,
    "element_size": lambda self: self._data.dtype.itemsize,
    "is_floating_point": lambda self: self._data.dtype.kind == "f",
    "is_complex": lambda self: self._data.dtype.kind == "c",
    "is_contiguous": lambda self: bool(self._data.flags.c_contiguous),
    "new_zeros": _new(np.zeros), "new_ones": _new(np.ones), "new_empty": _new(np.empty),
    "new_full": new_full, "new_tensor": new_tensor,
    "unfold": unfold_dim, "contiguous": contiguous,
}  # fmt: skip

PROPERTIES = {
    "device": property(lambda self: dtypes.CPU),
    "is_cuda": property(lambda self: False),
    "grad_fn": property(lambda self: None if self._op is None else GradFn(self._op)),
}


def bind() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, prop in PROPERTIES.items():
        setattr(Tensor, name, prop)


bind()
