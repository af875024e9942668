"""Run an exported ONNX file in onnxruntime and compare its outputs with the model's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.exporter.trace import flatten_outputs

SYMBOLIC_SIZE = 3  # size drawn for a symbolic dim (batch) when no inputs are given


@dataclass
class VerifyResult:
    """Largest differences between onnxruntime and bpcli over all outputs."""

    max_abs: float
    max_rel: float
    ok: bool
    rtol: float
    atol: float
    per_output: dict[str, tuple[float, float]] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def _random_inputs(sess, proto, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    props = {p.key: p.value for p in proto.metadata_props}
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else SYMBOLIC_SIZE for d in inp.shape]
        kind = inp.type[len("tensor(") : -1]
        if kind.startswith("float") or kind == "double":
            dt = {"float": np.float32, "double": np.float64, "float16": np.float16}[kind]
            feeds[inp.name] = rng.standard_normal(shape).astype(dt)
        elif kind.startswith(("int", "uint")):
            lo, hi = (int(v) for v in props.get(f"bpcli.int_range.{inp.name}", "0,1").split(","))
            feeds[inp.name] = rng.integers(lo, hi + 1, size=shape).astype(np.dtype(kind))
        elif kind == "bool":
            feeds[inp.name] = rng.random(shape) < 0.5
        else:
            raise BpcliError(f"cannot draw a random input of type {inp.type}", "verify")
    return feeds


def verify(model, path, inputs=None, rtol: float = 1e-4, atol: float = 1e-5,
           seed: int = 0) -> VerifyResult:  # fmt: skip
    """Compare onnxruntime's outputs of the file at ``path`` with ``model``'s (in eval mode).

    Args:
        model: the bpcli Module the file was exported from.
        path: the ONNX file.
        inputs: an array, a tuple of arrays (in graph-input order) or a dict by input name;
            None draws random ones (normal floats, integers within the traced range).
        rtol, atol: ``ok`` is ``|ort - bpcli| <= atol + rtol * |bpcli|`` everywhere.
    """
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(Path(path)))
    opts = ort.SessionOptions()
    # onnxruntime would otherwise run QuantizeLinear -> DequantizeLinear -> Gemm as int8
    # arithmetic of its own (it quantizes the float weights too): not what the file says.
    opts.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if inputs is None:
        feeds = _random_inputs(sess, proto, seed)
    elif isinstance(inputs, dict):
        feeds = {k: np.asarray(v) for k, v in inputs.items()}
    else:
        items = inputs if isinstance(inputs, tuple | list) else [inputs]
        feeds = {
            n: np.asarray(v.data if isinstance(v, Tensor) else v)
            for n, v in zip(names, items, strict=True)
        }
    got = sess.run(None, feeds)
    was_training = model.training
    model.eval()
    try:
        with grad_mode.no_grad():
            want = flatten_outputs(model(*(Tensor(feeds[n]) for n in names)))
    finally:
        model.train(was_training)
    outs = [o.name for o in sess.get_outputs()]
    if len(want) < len(got):
        raise BpcliError(f"the model gives {len(want)} outputs, the file {len(got)}", "verify")
    per, ok, max_abs, max_rel = {}, True, 0.0, 0.0
    for name, a, b in zip(outs, got, want, strict=False):
        b = b.data
        if a.shape != b.shape:
            raise BpcliError(f"output {name}: onnxruntime {a.shape}, bpcli {b.shape}", "verify")
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d_abs = float(diff.max()) if diff.size else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = diff / np.maximum(np.abs(b.astype(np.float64)), np.finfo(np.float32).tiny)
        d_rel = float(np.nanmax(rel)) if rel.size else 0.0
        per[name] = (d_abs, d_rel)
        ok &= bool(np.all(diff <= atol + rtol * np.abs(b)))
        max_abs, max_rel = max(max_abs, d_abs), max(max_rel, d_rel)
    return VerifyResult(max_abs, max_rel, ok, rtol, atol, per, feeds)
