"""One-node ONNX models for the importer's tests: build, run through bpcli and onnxruntime,
and check bpcli's gradients against torch autograd and float64 finite differences."""

from __future__ import annotations

import numpy as np
from onnx import helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.load import load

RNG = np.random.default_rng(0)


def node_model(node, inputs: dict, opset: int):
    """``node`` alone in a graph whose inputs are ``inputs`` (name -> array)."""
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]  # fmt: skip
    outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    g = helper.make_graph([node], "g", vis, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9  # what the installed onnxruntime reads
    return m


def run_bpcli(node, inputs: dict, opset: int, wrt=()):
    """bpcli's outputs (a tuple) and the input tensors (``wrt`` ones require a gradient)."""
    ts = {k: Tensor(v, requires_grad=k in wrt) for k, v in inputs.items()}
    out = load(node_model(node, inputs, opset), check=False)(*ts.values())
    return (out if isinstance(out, tuple) else (out,)), ts


def run_ort(node, inputs: dict, opset: int) -> list:
    import onnxruntime as ort

    sess = ort.InferenceSession(node_model(node, inputs, opset).SerializeToString(),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    return sess.run(None, inputs)


def vs_torch(node, inputs, opset, torch_fn, wrt, rtol=1e-5, atol=1e-6):
    """The first output and the VJP of a random cotangent against ``torch_fn(**tensors)``."""
    import torch

    (y, *_), ts = run_bpcli(node, inputs, opset, wrt)
    g = RNG.standard_normal(y.shape).astype(y.dtype)
    F.sum(F.mul(y, Tensor(g))).backward()
    tt = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in inputs.items()}
    ty = torch_fn(**tt)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=atol)
    for k in wrt:
        np.testing.assert_allclose(ts[k].grad, tt[k].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {k}")  # fmt: skip


def fd_check(node, inputs, opset, wrt, eps=1e-6, tol=1e-6, directions=3):
    """float64 central differences of L = sum(y * r) along random directions."""
    inputs = {k: v.astype(np.float64) if k in wrt else v for k, v in inputs.items()}
    m = load(node_model(node, inputs, opset), check=False)
    ts = {k: Tensor(v, requires_grad=k in wrt) for k, v in inputs.items()}
    y = m(*ts.values())
    y = y[0] if isinstance(y, tuple) else y
    r = RNG.standard_normal(y.shape)
    F.sum(F.mul(y, Tensor(r))).backward()

    def loss(k, v):
        out = m(*[Tensor(v) if n == k else Tensor(a) for n, a in inputs.items()])
        return float(((out[0] if isinstance(out, tuple) else out).data * r).sum())

    for k in wrt:
        for _ in range(directions):
            d = RNG.standard_normal(inputs[k].shape)
            num = (loss(k, inputs[k] + eps * d) - loss(k, inputs[k] - eps * d)) / (2 * eps)
            assert abs(num - float((ts[k].grad * d).sum())) <= tol * max(1.0, abs(num)), k


def op_model(op: str, ins, opset: int, **attrs):
    """One ``op`` node with output ``y``; ``ins`` is [(name, array or None)], None for an
    omitted optional input."""
    node = helper.make_node(op, [n if a is not None else "" for n, a in ins], ["y"], **attrs)
    return node_model(node, {n: a for n, a in ins if a is not None}, opset)


def ort_outputs(model, feeds: dict) -> list:
    """onnxruntime's outputs; ``feeds`` values of None (omitted inputs) are left out."""
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {n: a for n, a in feeds.items() if a is not None})


def bpcli_outputs(model, feeds: dict, grads=()):
    """The imported model's outputs (a tuple), and its input tensors (``grads`` names need a
    gradient); ``feeds`` values of None are left out."""
    ts = {n: Tensor(a.copy(), requires_grad=n in grads) for n, a in feeds.items() if a is not None}
    out = load(model)(*ts.values())
    return (out if isinstance(out, tuple) else (out,)), ts


def run_pairs(model, ins, grad=()):
    """The imported model run on ``ins`` ([(name, array or None)]): its output, and the input
    tensors by name (those in ``grad`` need a gradient)."""
    args = [Tensor(a, requires_grad=n in grad) for n, a in ins if a is not None]
    return load(model, check=False)(*args), dict(zip([n for n, a in ins if a is not None], args))


def ort_pairs(model, ins):
    """onnxruntime's first output on ``ins`` ([(name, array or None)])."""
    return ort_outputs(model, dict(ins))[0]
