"""Shared helpers of the export tests: export at an opset, check the file, run onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx

import bpcli.onnx as bo
from bpcli.nn import Module
from bpcli.onnx.exporter.export import max_opset

OPSETS = (13, 17, max_opset())


class Fn(Module):
    """A model made of one function, to export functional ops on their own."""

    def __init__(self, fn, **params):
        super().__init__()
        self.fn = fn
        for k, v in params.items():
            setattr(self, k, v)

    def forward(self, *xs):
        return self.fn(self, *xs)


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def bigger(x: np.ndarray, axis: int = 0, extra: int = 2, seed: int = 1) -> np.ndarray:
    """``x`` with ``extra`` more (random or repeated) entries along the batch axis."""
    if x.dtype.kind == "f":
        shape = list(x.shape)
        shape[axis] = extra
        more = np.random.default_rng(seed).standard_normal(shape).astype(x.dtype)
    else:
        more = np.take(x, [0] * extra, axis=axis)
    return np.concatenate([x, more], axis=axis)


def check_export(model, x, tmp_path, opset, batch_axis=0, rtol=1e-4, atol=1e-5, grow=True, **kw):
    """Export, check the file, and compare onnxruntime with bpcli at another batch size."""
    model.eval()
    path = tmp_path / f"m{opset}.onnx"
    res = bo.export(model, x, path, opset=opset, batch_axis=batch_axis, **kw)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    assert proto.opset_import[0].version == opset
    state = set(model.state_dict())
    named = [n for n in res.initializers if n in state]
    used = {i for node in proto.graph.node for i in node.input}
    assert set(named) <= used
    xs = x if isinstance(x, tuple) else (x,)
    feeds = tuple(bigger(np.asarray(a), batch_axis) if grow else np.asarray(a) for a in xs)
    v = bo.verify(model, path, feeds if len(feeds) > 1 else feeds[0], rtol=rtol, atol=atol)
    assert v.ok, (v.max_abs, v.max_rel, v.per_output)
    return res, proto
