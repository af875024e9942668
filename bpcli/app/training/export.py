"""``bpcli export``: a trained run's model written as ONNX, optionally checked in onnxruntime.

``export_run`` rebuilds a checkpoint's model (``evaluate.restore``), traces it on an example
batch and writes the file; importing an ONNX file is ``app.model.onnx_files``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.errors import BpcliError

DEFAULT_OPSET = 17
EXAMPLE_BATCH = 2


@dataclass
class ExportRunResult:
    """What ``bpcli export`` wrote, and onnxruntime's differences when verified."""

    path: str
    checkpoint: str
    spec_name: str
    opset: int
    dynamic_batch: bool
    training: bool
    inputs: list[tuple[str, list, str]]
    outputs: list[str]
    op_types: dict[str, int]
    n_initializers: int
    n_params: int
    verify: dict[str, Any] | None = None  # max_abs, max_rel, ok, rtol, atol, per_output
    verify_skipped: str | None = None  # why --verify did not run
    preprocessing: list[str] = field(default_factory=list)  # steps written before the model

    @property
    def n_nodes(self) -> int:
        return sum(self.op_types.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_nodes": self.n_nodes}


def example_input(built, batch: int = EXAMPLE_BATCH, seed: int = 0) -> np.ndarray:
    """A batch to trace with: token ids spanning the vocabulary for a language model, else
    standard-normal floats of the model's input shape."""
    rng = np.random.default_rng(seed)
    shape = (batch, *built.input_shape)
    if built.task == "language":
        x = rng.integers(0, built.n_classes, size=shape).astype(np.int64)
        x.reshape(-1)[:2] = (0, built.n_classes - 1)  # the exporter records the id range
        return x
    return rng.standard_normal(shape).astype(np.float32)


def output_names(built, n_out: int) -> list[str] | None:
    """``logits`` then ``state_<i>`` for a language model's (logits, state) output."""
    if built.task == "language" and n_out > 1:
        return ["logits", *[f"state_{i}" for i in range(n_out - 1)]]
    return None


def export_run(run_or_checkpoint: str | os.PathLike, out: str | os.PathLike,
               opset: int = DEFAULT_OPSET, dynamic_batch: bool = True, verify: bool = False,
               training: bool = False, preprocessing: bool = True) -> ExportRunResult:  # fmt: skip
    """Export the model of a checkpoint (a run directory means its best.npz) to ``out``.

    The run's input preprocessing (its standardisation) goes into the graph in front of the
    model unless ``preprocessing`` is False, so the file takes raw inputs as ``bpcli predict``
    does; ``verify`` compares onnxruntime with bpcli on raw samples of the run's own data
    (``bpcli.app.training.export_verify``).

    Raises:
        BpcliError: missing/corrupt checkpoint, bad opset, an op with no ONNX export,
            unwritable output.
    """
    from bpcli.app.training.evaluate import restore
    from bpcli.engine.grad_mode import no_grad
    from bpcli.engine.tensor import Tensor
    from bpcli.onnx.exporter.export import MIN_OPSET as EXPORT_MIN
    from bpcli.onnx.exporter.export import export, max_opset
    from bpcli.onnx.exporter.trace import flatten_outputs

    if not EXPORT_MIN <= opset <= max_opset():
        raise BpcliError(f"must be in {EXPORT_MIN}..{max_opset()}, got {opset}", "--opset")
    out = Path(out)
    if not out.parent.is_dir():
        raise BpcliError("the output directory does not exist", str(out.parent))
    if verify and not training:
        from bpcli.app.training.export_verify import require_onnxruntime

        require_onnxruntime()
    built, ckpt, path = restore(run_or_checkpoint, data=False)
    model = built.model
    model.eval()
    x = example_input(built)
    with no_grad():
        n_out = len(flatten_outputs(model(Tensor(x))))
    in_names, out_names = None, output_names(built, n_out)
    if hasattr(model, "input_names") and hasattr(model, "_outputs"):  # an imported graph
        in_names, out_names = model.input_names, [n for n, _, _ in model._outputs][:n_out]
    res = export(model, x, out, opset=opset, dynamic_batch=dynamic_batch, training=training,
                 input_names=in_names, output_names=out_names)  # fmt: skip
    import onnx

    from bpcli.onnx.exporter.preprocess import write_preprocessing

    added = write_preprocessing(out, ckpt, include=preprocessing and not training)
    g = onnx.load(str(out), load_external_data=False).graph
    inputs = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim],
               str(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)))
              for i in g.input]  # fmt: skip
    ops = dict(res.op_types)
    for step in (added or {}).get("steps", []):
        for op in step["op_types"]:
            ops[op] = ops.get(op, 0) + 1
    result = ExportRunResult(
        str(out), str(path), ckpt.get("spec", {}).get("name", ""), opset, dynamic_batch,
        training, inputs, res.output_names, ops, len(res.initializers),
        sum(p.numel() for p in model.parameters()),
        preprocessing=[s["op"] for s in (added or {}).get("steps", [])],
    )  # fmt: skip
    if verify and training:
        result.verify_skipped = "a training-mode graph (batch statistics, dropout) is not compared"
    elif verify:
        from bpcli.app.training.export_verify import verify_export

        result.verify = verify_export(built, ckpt, out, with_preprocessing=added is not None)
    return result
