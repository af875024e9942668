"""In-place tensor methods (``add_``, ``mul_``, ``x += y``, ``clamp_``, ``copy_``, ...) as torch
has them, with version counters so a saved input changed in place fails at backward.

How a recorded in-place change works (torch's rule: a non-leaf tensor may be changed in place
anywhere, a leaf that requires grad only under ``no_grad``): the tensor's old value becomes a
tensor of its own (a copy, since the op may save it for its backward), the out-of-place op
runs on it, the result is written into the tensor's own buffer (so numpy arrays and views
sharing that memory see it) and the tensor takes the new node. Nodes that saved the tensor
before see its version move and refuse to run backward.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine import op as op_module
from bpcli.engine.convert import const, lift
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


def _tracks(self: Tensor, others) -> bool:
    return grad_mode.enabled and (
        self._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)
    )


def _fit(self: Tensor, out: Tensor, name: str) -> Tensor:
    """``out`` checked to fit ``self``: same shape, a dtype that casts to ``self``'s."""
    if out.shape != self.shape:
        raise BpcliError(
            f"output with shape {list(self.shape)} doesn't match the broadcast shape "
            f"{list(out.shape)}",
            name,
        )
    if out.dtype != self.dtype:
        rank = "biufc"  # bool < int < float < complex: torch casts down within a kind only
        if rank.index(out.dtype.kind.replace("u", "i")) > rank.index(self.dtype.kind.replace("u", "i")):
            raise BpcliError(
                f"result type {out.dtype} can't be cast to the desired output type {self.dtype}",
                name,
            )
        out = F.astype(out, self.dtype)
    return out


def _aliases_parent(self: Tensor) -> bool:
    op = self._op
    return op is not None and any(np.may_share_memory(self._data, p._data) for p in op.parents)


def _protect_saved(self: Tensor, old_value: np.ndarray | None) -> None:
    """The node that made ``self`` may have saved its output for backward (exp, sigmoid):
    hand it the old value, so writing ``self``'s buffer cannot change that node's gradient."""
    op = self._op
    if op is None or op.freed:
        return
    for key, v in list(op.__dict__.items()):
        if isinstance(v, np.ndarray) and np.may_share_memory(v, self._data):
            if v is not self._data:
                raise BpcliError(
                    f"the {op.name} op saved part of this tensor for its backward; change a "
                    "clone() of it instead",
                    "inplace",
                )
            if old_value is None:
                old_value = self._data.copy()
            op.__dict__[key] = old_value


def apply_inplace(self: Tensor, name: str, fn, *others) -> Tensor:
    """Change ``self`` to ``fn(self, *others)`` in place; see the module docstring."""
    if not self._data.flags.writeable:
        raise BpcliError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location (an expanded tensor); clone() it first",
            name,
        )
    if not _tracks(self, others):
        with grad_mode.no_grad():
            out = _fit(self, fn(self, *others), name)
        _protect_saved(self, None)
        self._data[...] = out._data
        self._version += 1
        _tell_observers(self, out)
        return self
    if self._op is None and self._requires_grad:
        raise BpcliError(
            "a leaf tensor that requires grad is being used in an in-place operation; "
            "do it under bp.no_grad() or on a clone()",
            name,
        )
    if _aliases_parent(self):
        # NOTE: torch rewrites the base's graph too (CopySlices); bpcli keeps no view links,
        # so the base's gradient would silently be wrong: refuse instead.
        raise BpcliError(
            "in-place change of a view of another tensor while recording the graph is not "
            "supported; change a clone() of it, or the base tensor",
            name,
        )
    old = Tensor.__new__(Tensor)
    old._data, old.grad, old._hooks, old._version = self._data.copy(), None, None, 0
    old._op, old._idx, old._requires_grad = self._op, self._idx, self._requires_grad
    _tell_observers(old, self)  # the old value, as a tensor of its own
    out = _fit(self, fn(old, *others), name)
    _protect_saved(self, old._data)
    self._data[...] = out._data
    self._op, self._idx, self._requires_grad = out._op, out._idx, out._requires_grad
    self._version += 1
    _tell_observers(self, out)
    return self


def _tell_observers(self: Tensor, out: Tensor) -> None:
    """Tell a tracer (the ONNX exporter) that ``self`` now holds ``out``'s value: a ``clone``
    from ``out`` to ``self``, so the ops that read ``self`` from here on read ``out``."""
    if op_module.observers:
        clone = op_module.OPS["clone"]
        for observe in op_module.observers:
            observe(clone, (out,), {}, self)


def _scaled(other, alpha):
    return other if alpha == 1 else F.mul(other, alpha)


def add_(self, other, *, alpha=1):
    return apply_inplace(self, "add_", lambda s, o: F.add(s, _scaled(o, alpha)), other)


def sub_(self, other, *, alpha=1):
    return apply_inplace(self, "sub_", lambda s, o: F.sub(s, _scaled(o, alpha)), other)


def mul_(self, other):
    return apply_inplace(self, "mul_", F.mul, other)


def div_(self, other, *, rounding_mode=None):
    if rounding_mode is not None:
        div = getattr(F, "div")
        return apply_inplace(self, "div_", lambda s, o: div(s, o, rounding_mode=rounding_mode),
                             other)  # fmt: skip
    return apply_inplace(self, "div_", F.div, other)


def pow_(self, exponent):
    return apply_inplace(self, "pow_", F.pow, exponent)


def clamp_(self, min=None, max=None):  # noqa: A002 - torch's keyword names
    return apply_inplace(self, "clamp_", lambda s, lo, hi: F.clamp(s, lo, hi), min, max)


def _unary(fname):
    return lambda self: apply_inplace(self, fname + "_", getattr(F, fname))


def _constant(self: Tensor, value) -> Tensor:
    """``value`` broadcast to ``self`` through ``where``, so the gradient to ``self`` is 0."""
    never = const(np.zeros((), bool))
    return F.where(never, self, value)


def _as_dtype(value, dtype) -> Tensor:
    """A fill value in the tensor's dtype (``int_tensor.fill_(2.5)`` fills 2, as torch)."""
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else F.astype(value, dtype)
    return const(np.asarray(value).astype(dtype))


def zero_(self):
    return apply_inplace(self, "zero_", _constant, const(np.zeros((), self.dtype)))


def fill_(self, value):
    if isinstance(value, Tensor) and value.ndim:
        raise BpcliError(f"fill_ takes a 0-d tensor, got {value.ndim} dims", "fill_")
    return apply_inplace(self, "fill_", _constant, _as_dtype(value, self.dtype))


def copy_(self, src, non_blocking: bool = False):
    src = lift(src)
    try:
        np.broadcast_shapes(src.shape, self.shape)
    except ValueError:
        raise BpcliError(f"cannot copy shape {src.shape} into shape {self.shape}", "copy_") from None
    if src.dtype != self.dtype:  # copy_ casts whatever the dtypes, as torch
        src = F.astype(src, self.dtype)
    return apply_inplace(self, "copy_", _constant, src)


def masked_fill_(self, mask, value):
    mask = lift(mask)
    if mask.dtype != np.bool_:
        raise BpcliError(f"expected a bool mask, got {mask.dtype}", "masked_fill_")
    value = _as_dtype(value, self.dtype)
    return apply_inplace(self, "masked_fill_", lambda s, v: F.where(mask, v, s), value)


def index_add_(self, dim: int, index, source, *, alpha=1):
    return apply_inplace(
        self, "index_add_", lambda s, src: F.index_add(s, dim, index, _scaled(src, alpha)), source
    )


F = None  # bpcli.functional, handed in by bind(): importing it here would be a circle

METHODS = {
    "add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "pow_": pow_, "clamp_": clamp_,
    "clip_": clamp_, "zero_": zero_, "fill_": fill_, "copy_": copy_, "masked_fill_": masked_fill_,
    "index_add_": index_add_,
    "__iadd__": add_, "__isub__": sub_, "__imul__": mul_, "__itruediv__": div_, "__ipow__": pow_,
}  # fmt: skip
for _f in ("neg", "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "sin", "cos"):
    METHODS[_f + "_"] = _unary(_f)
METHODS["scatter_"] = lambda self, dim, index, src, **kw: apply_inplace(
    self, "scatter_", lambda s, v: F.scatter(s, dim, index, v, **kw), src
)

def bind(functional) -> None:
    """Attach the in-place methods; ``functional`` is bpcli.functional (it calls this)."""
    global F
    F = functional
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
