"""The ONNX backend interface (``onnx.backend.base``) over the bpcli importer, so onnx's own
conformance suite runs against it:
``onnx.backend.test.BackendTest(bpcli.onnx.conformance.backend, ...)``.

The graph runs in eval mode (ONNX inference semantics: Dropout off, BatchNormalization on its
running statistics unless a node sets ``training_mode``), with gradients recorded through
every float input so the suite exercises the differentiable engine path, not a numpy shortcut.
Sequence and optional values travel as Python lists / None of Tensors, maps as dicts of plain
numbers, strings as ``str``-dtype constant Tensors; they are bound without the graph input's
dtype and shape check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.load import OnnxModule, load

__all__ = ["BpcliBackend", "BpcliRep", "prepare", "run_model", "run_node", "supports_device"]


def _to_value(x: Any, grad: bool) -> Any:
    if x is None:
        return None
    if isinstance(x, list):
        return [_to_value(v, grad) for v in x]
    if isinstance(x, dict):
        return dict(x)  # a map: its values stay plain numbers
    a = x.data if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype == object:
        return const(a.astype(str))
    # a copy, so an op that writes in place can never change the caller's array
    return Tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f")


def _from_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, list):
        return [_from_value(t) for t in v]
    if isinstance(v, dict):  # a map, with Python numbers as onnxruntime gives them
        return {k: x.item() if isinstance(x, np.generic) else x for k, x in v.items()}
    a = np.asarray(v.data)
    return a.astype(object) if a.dtype.kind == "U" else a


class BpcliRep(BackendRep):
    """A prepared model: ``run(inputs)`` returns a list of numpy arrays."""

    def __init__(self, module: OnnxModule, grad: bool = True):
        self.module = module
        self.grad = grad

    def run(self, inputs: Any, **kwargs: Any) -> list[np.ndarray]:
        if isinstance(inputs, dict):
            inputs = [inputs[n] for n in self.module.input_names]
        elif isinstance(inputs, np.ndarray | Tensor):
            inputs = [inputs]
        out = self.module(*[_to_value(x, self.grad) for x in inputs])
        outs = out if isinstance(out, tuple) else (out,)
        return [_from_value(o) for o in outs]


class BpcliBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> BpcliRep:
        super().prepare(model, device, **kwargs)  # onnx.checker
        return cls._rep(model, **kwargs)

    @classmethod
    def _rep(cls, model: onnx.ModelProto, **kwargs: Any) -> BpcliRep:
        module = load(model, trainable=False, check=False)
        module.eval()
        return BpcliRep(module, grad=kwargs.get("grad", True))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info=None, **kwargs: Any):  # fmt: skip
        arrays = [np.asarray(x) for x in inputs]
        names = [n for n in node.input if n]
        graph_in = [onnx.helper.make_tensor_value_info(
            n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays, strict=False)]  # fmt: skip
        graph_out = [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = onnx.helper.make_graph([node], "run_node", graph_in, graph_out)
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        # the outputs' types are unknown here, so the checker would refuse the graph
        return cls._rep(model, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU")


prepare = BpcliBackend.prepare
run_model = BpcliBackend.run_model
run_node = BpcliBackend.run_node
supports_device = BpcliBackend.supports_device
is_compatible = BpcliBackend.is_compatible
