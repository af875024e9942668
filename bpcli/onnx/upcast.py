"""A float16/bfloat16 graph rewritten to float32, so it can be fine-tuned.

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


def upcast(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A float32 copy of ``model`` and how many of its tensors and types were narrow."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out, _graph(out.graph)


def _graph(g: onnx.GraphProto) -> int:
    n = 0
    for i, t in enumerate(g.initializer):
        if t.data_type in NARROW:
            g.initializer[i].CopyFrom(_wide_tensor(t))
            n += 1
    for vi in [*g.input, *g.output, *g.value_info]:
        n += _type(vi.type)
    for node in g.node:
        for a in node.attribute:
            if a.name in TYPE_ATTRS and a.type == onnx.AttributeProto.INT and a.i in NARROW:
                a.i = TensorProto.FLOAT
                n += 1
            elif a.type == onnx.AttributeProto.TENSOR and a.t.data_type in NARROW:
                a.t.CopyFrom(_wide_tensor(a.t))
                n += 1
            elif a.type == onnx.AttributeProto.GRAPH:
                n += _graph(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                n += sum(_graph(sub) for sub in a.graphs)
    return n


def _wide_tensor(t: TensorProto) -> TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name)


def _type(tp: onnx.TypeProto) -> int:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type" and tp.tensor_type.elem_type in NARROW:
        tp.tensor_type.elem_type = TensorProto.FLOAT
        return 1
    if kind == "sequence_type":
        return _type(tp.sequence_type.elem_type)
    if kind == "optional_type":
        return _type(tp.optional_type.elem_type)
    if kind == "map_type":
        return _type(tp.map_type.value_type)
    return 0
