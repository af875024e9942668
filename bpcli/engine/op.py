"""Op: the base of every differentiable primitive, and OPS, the table of them all.

An op is one class that holds, side by side, its forward on numpy arrays, its VJP on numpy
arrays, a one-line formula, and the name of the ONNX operator it exports to. One instance is
made per call and is the graph node: it keeps the parent tensors and what the backward needs.
The trainer, gradcheck, the ONNX importer and exporter and the tests all read ``OPS``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine.dtypes import result_dtype
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

OPS: dict[str, type[Op]] = {}

# Callables f(op_class, inputs, attrs, result) told of every apply, recorded or not (the ONNX
# exporter traces with it); empty in normal runs, so the hot path pays one truth test.
observers: list = []


class Op:
    """Base class of a primitive. Subclasses set ``name`` and define ``forward``/``backward``.

    ``parents`` holds every input tensor and ``needs`` which of them need a gradient.
    ``forward(*arrays, **attrs)`` returns one array (or a tuple when ``n_outputs > 1``) and may
    keep on ``self`` what ``backward`` needs. ``backward(*grads)`` receives one gradient per
    output and returns one gradient per input (``None`` where an input needs none); it may
    return a gradient of a broadcast shape: the engine sums it down to the input's shape, so
    no op un-broadcasts on its own. ``self.needs`` says which inputs need a gradient.
    """

    name: ClassVar[str] = ""
    onnx: ClassVar[str | None] = None  # ONNX op type this primitive exports to
    differentiable: ClassVar[bool] = True
    n_outputs: ClassVar[int] = 1  # >1: forward returns a tuple (of any length)
    # Ops whose backward reads their inputs: a later in-place change to one is an error.
    saves_inputs: ClassVar[bool] = True
    # Ops whose gradient for one input reads only the other inputs (a * b, a @ b): an input
    # changed in place after the forward matters only if another input needs a gradient.
    reads_others_only: ClassVar[bool] = False

    __slots__ = (
        "__dict__",
        "attrs",
        "edges",
        "freed",
        "hooks",
        "needs",
        "out_grads",
        "out_meta",
        "parents",
        "retained",
        "versions",
    )

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name:
            if cls.name in OPS:
                raise RuntimeError(f"op {cls.name!r} registered twice")
            OPS[cls.name] = cls

    def forward(self, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs):
        """Run the forward on the inputs' arrays and, if any needs a gradient, record the node."""
        op = cls.__new__(cls)
        op.attrs = attrs
        try:
            out = op.forward(*[t._data for t in inputs], **attrs)
        except BpcliError:
            raise
        except (ValueError, IndexError) as e:
            # numpy's own complaint (shapes that do not broadcast, ...) named after the op
            shapes = ", ".join(f"{t.shape} {t.dtype}" for t in inputs)
            raise BpcliError(f"{e} (inputs: {shapes})", cls.name) from None
        track = cls.differentiable and grad_mode.enabled and any(t._requires_grad for t in inputs)
        single = cls.n_outputs == 1
        if track:
            op.parents = inputs
            # each input's node as it is now: an in-place change later moves the tensor to a
            # new node, but this op consumed the value before it (torch's grad_fn edges)
            op.edges = tuple((x._op, x._idx) for x in inputs)
            op.needs = tuple(x._requires_grad for x in inputs)
            op.versions = tuple(x._version for x in inputs)
            # n_outputs > 1 means "a tuple": its length may vary per call (split)
            op.out_grads = [None] * (1 if single else len(out))
            op.out_meta = []
            op.hooks = op.retained = None
            op.freed = False
        if single:
            result = _wrap(out, op, 0, track)
        else:
            result = tuple(_wrap(o, op, i, track) for i, o in enumerate(out))
        if observers:
            for fn in observers:
                fn(cls, inputs, attrs, result)
        return result

    # -- graph bookkeeping used by the backward walk ---------------------------------------
    def release(self) -> None:
        """Drop the saved arrays and parents so their memory is freed after backward."""
        self.__dict__.clear()
        self.parents = self.edges = ()
        self.freed = True
        self.out_grads = None


def _wrap(arr, op: Op, idx: int, track: bool) -> Tensor:
    t = Tensor.__new__(Tensor)
    t._data, t.grad, t._version, t._hooks = arr, None, 0, None
    if track:
        op.out_meta.append((arr.shape, arr.dtype))
    # Integer/bool outputs (masks, indices) of a tracked op carry no gradient.
    if track and arr.dtype.kind in "fc":
        t._op, t._idx, t._requires_grad = op, idx, True
    else:
        t._op, t._idx, t._requires_grad = None, 0, False
    return t


def same_float(opname: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give two operands the dtype torch's promotion gives them (``engine/dtypes.py``): a
    dimensioned array outranks a 0-d one within a category, a higher category wins. The
    engine casts each gradient back to its input's dtype, so promoting here is all it takes."""
    da, db = a.dtype, b.dtype
    if da == db:
        return a, b
    dt = result_dtype(a, b)
    return (a if da == dt else a.astype(dt)), (b if db == dt else b.astype(dt))


def strict_float(opname: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The operands of a matmul/conv: an int/bool side takes the float side's dtype; two
    float precisions are an error, as torch gives for ``mm``/``conv`` (no promotion there)."""
    da, db = a.dtype, b.dtype
    if da == db:
        return a, b
    if da.kind == "f" and db.kind == "f":
        raise BpcliError(
            f"dtype mismatch {da} vs {db}: cast one side with .astype() (torch does not "
            "promote here either)",
            opname,
        )
    return same_float(opname, a, b)
