"""A float16/bfloat16 graph rewritten to float32, so it can be fine-tuned (or any float graph
to float64, for gradient checks).

The engine trains in float32/float64; a narrow-float graph imported as it is computes each node
in float32 and rounds its outputs back (see ``graph._call``), but its narrow weights are
constants. ``upcast`` rewrites the ModelProto instead: narrow initializers, graph inputs and
outputs, value infos, Constant/ConstantOfShape values and the type attributes of Cast and of the
ops that make new tensors (``to``, ``dtype``, ``output_dtype``, ``output_datatype``) become
float32, in subgraphs too. The weights then train as float32 Parameters and an export writes a
float32 model: fine-tuning in full precision, as is usual on a CPU.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

NARROW = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
TYPE_ATTRS = ("to", "dtype", "output_dtype", "output_datatype")


def upcast(model: onnx.ModelProto, to: str = "float32") -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` in ``to`` ("float32": narrow floats widened; "float64": float32
    too), and how many of its tensors and types changed."""
    if to not in ("float32", "float64"):
        raise ValueError(f"upcast to float32 or float64, not {to!r}")
    target = TensorProto.FLOAT if to == "float32" else TensorProto.DOUBLE
    widen = NARROW if to == "float32" else NARROW | {TensorProto.FLOAT}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out, _graph(out.graph, widen, target)


def _graph(g: onnx.GraphProto, widen: set[int], target: int) -> int:
    n = 0
    for i, t in enumerate(g.initializer):
        if t.data_type in widen:
            g.initializer[i].CopyFrom(_wide_tensor(t, target))
            n += 1
    for vi in [*g.input, *g.output, *g.value_info]:
        n += _type(vi.type, widen, target)
    for node in g.node:
        for a in node.attribute:
            if a.name in TYPE_ATTRS and a.type == onnx.AttributeProto.INT and a.i in widen:
                a.i = target
                n += 1
            elif a.type == onnx.AttributeProto.TENSOR and a.t.data_type in widen:
                a.t.CopyFrom(_wide_tensor(a.t, target))
                n += 1
            elif a.type == onnx.AttributeProto.GRAPH:
                n += _graph(a.g, widen, target)
            elif a.type == onnx.AttributeProto.GRAPHS:
                n += sum(_graph(sub, widen, target) for sub in a.graphs)
    return n


def _wide_tensor(t: TensorProto, target: int) -> TensorProto:
    dtype = np.float32 if target == TensorProto.FLOAT else np.float64
    return numpy_helper.from_array(numpy_helper.to_array(t).astype(dtype), t.name)


def _type(tp: onnx.TypeProto, widen: set[int], target: int) -> int:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type" and tp.tensor_type.elem_type in widen:
        tp.tensor_type.elem_type = target
        return 1
    if kind == "sequence_type":
        return _type(tp.sequence_type.elem_type, widen, target)
    if kind == "optional_type":
        return _type(tp.optional_type.elem_type, widen, target)
    if kind == "map_type":
        return _type(tp.map_type.value_type, widen, target)
    return 0
