"""Write a run's input preprocessing into an exported ONNX file, in front of the model.

The model was trained on ``(x - mean) / std`` of the raw inputs, so the file must take raw
inputs too, or onnxruntime answers differently from ``bpcli predict``. The graph input keeps
its name, type and shape; a ``Sub`` and a ``Div`` with the saved statistics as initializers
feed what the first layer used to read. ``metadata_props`` record what was added (and the
class names, task and training input scale), so ``bpcli import`` and any other reader can
tell.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bpcli.errors import BpcliError

META_PREPROCESSING = "bpcli.preprocessing"
META_CLASSES = "bpcli.classes"
META_TASK = "bpcli.task"
META_INPUT_RMS = "bpcli.input_rms"


def _rename_uses(graph, old: str, new: str) -> None:
    """Every node input named ``old`` (in subgraphs too, which may read outer names) reads
    ``new``."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for attr in node.attribute:
            for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                _rename_uses(g, old, new)


def add_standardize(model: onnx.ModelProto, mean: np.ndarray, std: np.ndarray,
                    input_index: int = 0) -> dict:  # fmt: skip
    """Insert ``(x - mean) / std`` after graph input ``input_index``; the description stored."""
    g = model.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    if input_index >= len(inputs):
        raise BpcliError(f"the graph has no input {input_index}", "export")
    inp = inputs[input_index]
    elem = inp.type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        raise BpcliError(f"cannot standardise input {inp.name!r} of type "
                         f"{onnx.TensorProto.DataType.Name(elem)}", "export")  # fmt: skip
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    raw, mid = inp.name, f"{inp.name}__standardized"
    _rename_uses(g, raw, mid)
    for out in g.output:  # a graph that returns its input unchanged
        if out.name == raw:
            raise BpcliError("the graph returns its input unchanged; nothing to preprocess",
                             "export")  # fmt: skip
    m, s = f"{raw}__mean", f"{raw}__std"
    g.initializer.extend([numpy_helper.from_array(np.asarray(mean, dtype), m),
                          numpy_helper.from_array(np.asarray(std, dtype), s)])  # fmt: skip
    nodes = [helper.make_node("Sub", [raw, m], [f"{raw}__centered"], name="preprocess/sub_mean"),
             helper.make_node("Div", [f"{raw}__centered", s], [mid], name="preprocess/div_std")]
    for n in reversed(nodes):
        g.node.insert(0, n)
    return {"input": raw, "steps": [{"op": "standardize", "mean_shape": list(np.shape(mean)),
                                     "nodes": [n.name for n in nodes],
                                     "op_types": [n.op_type for n in nodes]}]}  # fmt: skip


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    keep = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in values.items():
        model.metadata_props.add(key=k, value=v)


def write_preprocessing(path: str | Path, ckpt: dict, include: bool = True) -> dict | None:
    """Add the checkpoint's preprocessing (its standardizer) to the file at ``path`` unless
    ``include`` is False, and its metadata either way. Returns what was added (None: nothing
    to add, or left out)."""
    path = Path(path)
    model = onnx.load(str(path))
    std = ckpt.get("standardizer")
    meta: dict[str, str] = {META_TASK: str(ckpt.get("task", ""))}
    if ckpt.get("classes") and ckpt.get("task") == "classification":
        meta[META_CLASSES] = json.dumps(list(ckpt["classes"]))
    if ckpt.get("input_rms") is not None:
        meta[META_INPUT_RMS] = repr(float(ckpt["input_rms"]))
    added = None
    if std is None:
        meta[META_PREPROCESSING] = json.dumps({"steps": [], "note": "inputs go to the model as "
                                                                    "given"})  # fmt: skip
    elif not include:
        meta[META_PREPROCESSING] = json.dumps({"steps": [], "left_out": ["standardize"],
                                               "note": "feed (x - mean) / std of the training "
                                                       "data (--no-preprocessing)"})  # fmt: skip
    else:
        added = add_standardize(model, np.asarray(std["mean"]), np.asarray(std["std"]))
        meta[META_PREPROCESSING] = json.dumps(added)
    set_metadata(model, meta)
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model)
    try:
        onnx.save(model, str(path))
    except OSError as e:
        raise BpcliError(f"cannot write the file: {e.strerror or e}", str(path)) from None
    return added


def read_metadata(model: onnx.ModelProto) -> dict[str, object]:
    """The bpcli metadata of a file: preprocessing, classes, task (parsed where JSON)."""
    out: dict[str, object] = {}
    for p in model.metadata_props:
        if p.key in (META_PREPROCESSING, META_CLASSES):
            try:
                out[p.key] = json.loads(p.value)
            except ValueError:
                out[p.key] = p.value
        elif p.key in (META_TASK, META_INPUT_RMS):
            out[p.key] = p.value
    return out
