"""ExportContext: the ONNX graph under construction, and the helpers every emitter uses.

Emitters (``elementwise.py``, ``nn.py``) receive the context, the traced Record and the
names of its inputs, and call ``ctx.node`` to add nodes. The helpers here hide the changes
across opsets 13 and up (reduction axes as attribute or input, ...) and the dynamic batch:
shapes that differ between the two traces (batch B and B + 1) are built from ``Shape(input)``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bpcli.errors import BpcliError
from bpcli.onnx.exporter.trace import Record

# since which opset each reduction takes ``axes`` as an input instead of an attribute
AXES_INPUT_SINCE = {"ReduceSum": 13}
AXES_INPUT_DEFAULT = 18
INT64_MAX = 2**63 - 1


def onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Inputs:
    """The ONNX names of a record's inputs, made on first use (constants become initializers
    only if an emitter asks for them: an all-zero RNN state may be left out instead)."""

    def __init__(self, ctx: ExportContext, rec: Record):
        self.ctx, self.rec = ctx, rec

    def __len__(self) -> int:
        return len(self.rec.inputs)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        return self.ctx.name_of(self.rec, i)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class ExportContext:
    """Nodes, initializers and names of the graph being written."""

    def __init__(self, opset: int, training: bool, params: dict[int, str]):
        self.opset, self.training = opset, training
        self.params = params  # id(tensor) -> state_dict name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.names: dict[int, str] = {}  # id(tensor) -> value name
        self.live: set[int] = set()  # ids of tensors computed in the graph (not constants)
        self.extra_outputs: list[tuple[str, np.dtype, tuple]] = []
        self.batch_input: str | None = None  # graph input whose dim `batch_axis` is dynamic
        self.batch_axis = 0
        self.batch_sizes: tuple[int, int] | None = None  # the two traced batch sizes
        self._used: set[str] = set()
        self._ints: dict[tuple, str] = {}
        self._batch: str | None = None
        self.path = ""

    # -- names ------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        hint = hint or "v"
        name, k = hint, 1
        while name in self._used:
            name, k = f"{hint}_{k}", k + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def name_of(self, rec: Record, i: int) -> str:
        t = rec.inputs[i]
        if id(t) in self.names:
            return self.names[id(t)]
        if id(t) in self.params:
            name = self.params[id(t)]
            self.initializers[name] = numpy_helper.from_array(np.asarray(t.data), name)
            self.names[id(t)] = name
            return name
        twin = rec.twin.inputs[i] if rec.twin is not None else None
        if twin is not None and twin.shape != t.shape:
            name = self._varying_const(rec, t.data, twin.shape)
        else:
            name = self.const(t.data, "const")
        self.names[id(t)] = name
        return name

    def _varying_const(self, rec: Record, arr: np.ndarray, shape2) -> str:
        flat = arr.reshape(-1)
        if flat.size == 0 or not np.all(flat == flat[0]):
            raise BpcliError(
                f"a constant of shape {arr.shape} that depends on the batch size and is not "
                "uniform; export with dynamic_batch=False",
                rec.where,
            )
        shape = self.dyn_shape(arr.shape, shape2, rec)
        return self.node("Expand", [self.const(flat[:1].reshape(()), "fill"), shape])

    def is_zero_const(self, rec: Record, i: int) -> bool:
        """Whether input ``i`` is a constant (not computed, not a parameter) of zeros."""
        t = rec.inputs[i]
        if id(t) in self.live or id(t) in self.params:
            return False
        return not np.any(t.data)

    # -- graph pieces ---------------------------------------------------------------------
    def const(self, value, hint: str = "const") -> str:
        """A constant as an initializer with a generated name."""
        name = self.fresh(hint)
        self.initializers[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def ints(self, values) -> str:
        """A 1-D int64 constant (shapes, axes, indices), shared between nodes."""
        key = tuple(int(v) for v in values)
        if key not in self._ints:
            self._ints[key] = self.const(np.array(key, dtype=np.int64), "ints")
        return self._ints[key]

    def scalar(self, value, dtype) -> str:
        return self.const(np.array(value, dtype=dtype), "scalar")

    def node(self, op_type: str, inputs, n_out: int = 1, outputs=None, **attrs):
        """Add a node; returns its output name (a list when ``n_out > 1``)."""
        if outputs is None:
            outputs = [self.fresh(f"{op_type.lower()}") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        prefix = f"{self.path}/" if self.path else ""
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), list(outputs), name=self.fresh(prefix + op_type), **attrs
            )
        )
        return outputs[0] if n_out == 1 else list(outputs)

    # -- opset-dependent helpers ------------------------------------------------------------
    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        axes = [int(a) for a in axes]
        since = AXES_INPUT_SINCE.get(op_type, AXES_INPUT_DEFAULT)
        if self.opset >= since:
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes) -> str:
        return self.node("Squeeze", [x, self.ints(axes)])

    def reshape(self, x: str, shape) -> str:
        return self.node("Reshape", [x, self.ints(shape)])

    # -- dynamic batch ------------------------------------------------------------------------
    def varies(self, rec: Record, i: int, out: bool = False) -> set[int]:
        """Axes of input (or output) ``i`` whose size differs between the two traces."""
        if rec.twin is None:
            return set()
        a = (rec.outputs if out else rec.inputs)[i].shape
        b = (rec.twin.outputs if out else rec.twin.inputs)[i].shape
        return {k for k, (m, n) in enumerate(zip(a, b, strict=False)) if m != n}

    def batch(self) -> str:
        """A [1] int64 tensor holding the batch size of the graph input."""
        if self._batch is None:
            if self.batch_input is None:
                raise BpcliError("no dynamic batch input", "export")
            shape = self.node("Shape", [self.batch_input])
            self._batch = self.node("Gather", [shape, self.ints([self.batch_axis])], axis=0)
        return self._batch

    def dim_expr(self, d1: int, d2: int, rec: Record | None = None) -> str:
        """A [1] int64 tensor equal to d1 at the first traced batch size and d2 at the second,
        as a * batch + c."""
        b1, b2 = self.batch_sizes
        a, r = divmod(d2 - d1, b2 - b1)
        c = d1 - a * b1
        if r or a < 0:
            raise BpcliError(
                f"a size ({d1} at batch {b1}, {d2} at batch {b2}) that is not a multiple of the "
                "batch size; export with dynamic_batch=False",
                rec.where if rec else "export",
            )
        v = self.batch()
        if a != 1:
            v = self.node("Mul", [v, self.ints([a])])
        if c:
            v = self.node("Add", [v, self.ints([c])])
        return v

    def dyn_shape(self, s1, s2, rec: Record | None = None) -> str:
        """A 1-D int64 shape tensor: fixed sizes as constants, varying ones from the batch."""
        if tuple(s1) == tuple(s2):
            return self.ints(s1)
        parts: list[str] = []
        run: list[int] = []
        for d1, d2 in zip(s1, s2, strict=True):
            if d1 == d2:
                run.append(d1)
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.dim_expr(d1, d2, rec))
        if run:
            parts.append(self.ints(run))
        return self.node("Concat", parts, axis=0)
