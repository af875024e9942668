"""Tensor: a numpy array, whether it needs a gradient, and the op node that made it.

The math methods (``x.exp()``, ``x @ w``, ...) are bound in ``engine/methods.py`` from the
functional API, so each op is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bpcli.engine import dtypes, grad_mode
from bpcli.engine.backward import run_backward
from bpcli.errors import BpcliError

Hook = Callable[[np.ndarray], "np.ndarray | None"]


def _default_dtype(data) -> np.dtype | None:
    """dtype rule of ``bp.tensor``: arrays keep theirs, Python floats take the default dtype
    (float32 unless ``bp.set_default_dtype`` changed it), as torch."""
    if isinstance(data, np.ndarray | np.generic):
        return None
    if isinstance(data, bool):
        return np.dtype(np.bool_)
    if isinstance(data, int):
        return np.dtype(np.int64)
    if isinstance(data, float):
        return dtypes.get_default_dtype()
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return dtypes.get_default_dtype()
    if arr.dtype.kind in "iu":
        return np.dtype(np.int64)
    return None


class Tensor:
    """An n-dimensional array that records the ops applied to it for reverse-mode autodiff.

    ``data`` is the numpy array itself (optimizers update it in place under ``no_grad``);
    ``grad`` is a numpy array or ``None``.
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_hooks",
        "_idx",
        "_op",
        "_requires_grad",
        "_version",
        "grad",
    )
    __array_priority__ = 100  # numpy defers ``ndarray + Tensor`` to Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data._data
        if dtype is None:
            dtype = _default_dtype(data)
        arr = np.array(data, dtype=dtype, copy=None)
        if arr.dtype == object:
            raise BpcliError(f"cannot make a tensor from {type(data).__name__}", "tensor")
        self._data = arr
        self.grad = None
        self._op = None
        self._idx = 0
        self._version = 0
        self._hooks = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    # -- data, dtype, flags ---------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        value = np.asarray(value)
        self._data = value
        self._version += 1

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and self._data.dtype.kind not in "fc":
            raise BpcliError(
                f"only float tensors can require gradients, this one is {self._data.dtype}",
                "requires_grad",
            )
        if not flag and self._op is not None:
            raise BpcliError(
                "cannot turn off requires_grad of a non-leaf tensor; use .detach()",
                "requires_grad",
            )
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        """The shape (torch's ``size()``), or the length of dim ``dim``; ``numel()`` counts."""
        if dim is None:
            return self._data.shape
        nd = self._data.ndim
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not -nd <= dim < nd:
            raise BpcliError(f"dim {dim!r} is out of range for a tensor with {nd} dims", "size")
        return self._data.shape[dim]

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def numel(self) -> int:
        return self._data.size

    def numpy(self) -> np.ndarray:
        return self._data

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def item(self):
        if self._data.size != 1:
            raise BpcliError(f"item() needs one element, the tensor has shape {self.shape}", "item")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        t = Tensor.__new__(Tensor)
        t._data, t.grad, t._op, t._idx, t._version, t._hooks = self._data, None, None, 0, 0, None
        t._requires_grad = False
        return t

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", precision=4, threshold=20)
        extra = ", requires_grad=True" if self._requires_grad else ""
        return f"tensor({body}, dtype={self.dtype}{extra})"

    def __bool__(self) -> bool:
        return bool(self._data)

    __hash__ = object.__hash__

    # -- in-place changes ---------------------------------------------------------------
    def _mark_inplace(self, what: str) -> None:
        if grad_mode.enabled and self._requires_grad:
            raise BpcliError(
                "in-place change of a tensor that requires grad would corrupt its gradient; "
                "do it under bp.no_grad() or on a detached copy",
                what,
            )
        self._version += 1

    def zero_(self) -> Tensor:
        self._mark_inplace("zero_")
        self._data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self._mark_inplace("fill_")
        self._data[...] = value
        return self

    def copy_(self, src) -> Tensor:
        self._mark_inplace("copy_")
        src = src._data if isinstance(src, Tensor) else np.asarray(src)
        if np.broadcast_shapes(src.shape, self.shape) != self.shape:
            raise BpcliError(f"cannot copy shape {src.shape} into shape {self.shape}", "copy_")
        self._data[...] = src
        return self

    # -- hooks and backward -------------------------------------------------------------
    def register_hook(self, hook: Hook) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned array
        replaces the gradient. Returns a function that removes the hook."""
        if not self._requires_grad:
            raise BpcliError(
                "cannot register a hook on a tensor that does not require grad", "register_hook"
            )
        if self._op is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self._op.hooks is None:
                self._op.hooks = {}
            hooks = self._op.hooks.setdefault(self._idx, [])
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if self._op is not None:
            import weakref

            if self._op.retained is None:
                self._op.retained = {}
            self._op.retained[self._idx] = weakref.ref(self)

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``; see ``engine/backward.py``."""
        run_backward(self, grad._data if isinstance(grad, Tensor) else grad, retain_graph)
