"""Evaluation and prediction from a checkpoint, and the metric bookkeeping training shares.

Metric names: ``loss`` (the spec's loss, mean per sample or per token), ``accuracy``
(classification and language: fraction of arg-max hits), ``perplexity`` (language:
``exp(loss)`` of the per-token cross-entropy), ``mae``, ``rmse`` and ``r2`` (regression, over
every target value). Training prefixes them with ``train_``, ``val_``
and ``test_``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.app.store import runs
from bpcli.app.store.checkpoint import load_checkpoint, require
from bpcli.app.training.inputs import fit_shape, scale_warning
from bpcli.data import Dataset, bptt_windows, iter_batches, stream_of
from bpcli.data.dataset import align_classes
from bpcli.engine.grad_mode import no_grad
from bpcli.errors import BpcliError

EVAL_BATCH = 512


class Meter:
    """Running sums of one pass (plain floats: no per-batch allocation beyond the arg-max)."""

    __slots__ = ("confusion", "correct", "count", "loss_sum", "reg", "task")

    def __init__(self, task: str, n_classes: int | None = None, confusion: bool = False):
        self.task = task
        self.loss_sum, self.count, self.correct = 0.0, 0, 0
        # regression: sums of |e|, e^2, y, y^2 and the number of target values
        self.reg = [0.0, 0.0, 0.0, 0.0, 0]
        self.confusion = (
            np.zeros((n_classes, n_classes), np.int64) if confusion and n_classes else None
        )

    def add(self, loss: float, out: np.ndarray, y: np.ndarray) -> None:
        n = y.size if self.task == "language" else len(y)
        self.loss_sum += loss * n
        self.count += n
        if self.task == "regression":
            e = out.astype(np.float64).reshape(y.shape) - y
            y64 = y.astype(np.float64)
            for i, v in enumerate((np.abs(e).sum(), (e * e).sum(), y64.sum(), (y64 * y64).sum())):
                self.reg[i] += float(v)
            self.reg[4] += int(y.size)
            return
        pred = out.argmax(-1)
        y = y.reshape(pred.shape)
        self.correct += int(np.count_nonzero(pred == y))
        if self.confusion is not None:
            k = len(self.confusion)
            flat = np.bincount(y.ravel() * k + pred.ravel(), minlength=k * k)
            self.confusion += flat.reshape(k, k)

    def result(self, prefix: str = "") -> dict[str, float]:
        loss = self.loss_sum / max(self.count, 1)
        out = {f"{prefix}loss": loss}
        if self.task != "regression":
            out[f"{prefix}accuracy"] = self.correct / max(self.count, 1)
        elif self.reg[4]:
            abs_e, sq_e, sy, syy, n = self.reg
            var = syy / n - (sy / n) ** 2  # of the targets, about their mean
            out[f"{prefix}mae"], out[f"{prefix}rmse"] = abs_e / n, math.sqrt(sq_e / n)
            out[f"{prefix}r2"] = 1.0 - (sq_e / n) / var if var > 0 else math.nan
        if self.task == "language":
            out[f"{prefix}perplexity"] = perplexity(loss)
        return out

    def state(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "count": self.count, "correct": self.correct,
                "reg": list(self.reg)}  # fmt: skip

    def load(self, state: dict[str, Any]) -> None:
        self.loss_sum, self.count = state["loss_sum"], state["count"]
        self.correct = state["correct"]
        self.reg = list(state.get("reg", [0.0, 0.0, 0.0, 0.0, 0]))  # older checkpoints: none


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


def eval_batch_size(n_tokens: int, batch_size: int, bptt: int) -> int:
    """Parallel streams for evaluating a (short) token stream: at most ``batch_size``, and
    each stream at least one window long where the stream allows."""
    return max(1, min(batch_size, n_tokens // (bptt + 1)))


def measure(built, ds: Dataset, batch_size: int, bptt: int = 64, prefix: str = "",
            confusion: bool = False) -> tuple[dict[str, float], np.ndarray | None]:  # fmt: skip
    """Loss and accuracy/perplexity of ``built.model`` on ``ds`` in eval mode, without
    gradients. Returns the metrics and the confusion matrix (rows: true, columns: predicted)."""
    model, loss_fn = built.model, built.loss_fn
    meter = Meter(built.task, built.n_classes, confusion)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            if built.task == "language":
                stream = stream_of(ds)
                streams = eval_batch_size(len(stream), batch_size, bptt)
                state = None
                for xb, yb in bptt_windows(stream, streams, bptt):
                    out, state = model(xb, state)
                    state = state if built.stateful else None
                    meter.add(float(loss_fn(out, yb).item()), out.data, yb)
            else:
                for xb, yb in iter_batches(ds.x, ds.y, max(batch_size, EVAL_BATCH), False):
                    out = model(xb)
                    meter.add(float(loss_fn(out, yb).item()), out.data, yb)
    finally:
        model.train(was_training)
    return meter.result(prefix), meter.confusion


# -- bpcli eval ---------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """What ``bpcli eval`` shows: metrics and, for classifiers, the confusion matrix."""

    checkpoint: Path
    dataset: str
    task: str
    n_samples: int
    metrics: dict[str, float]
    confusion: np.ndarray | None = None
    classes: list[str] | None = None
    epoch: int | None = None
    spec_name: str = ""
    warnings: list[str] = field(default_factory=list)  # about the inputs, one line each


def _resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory (its best.npz, else last.npz)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.npz", "last.npz"):
            if (p / name).exists():
                return p / name
        raise BpcliError("the run directory has no best.npz or last.npz", str(p))
    return p


def restore(checkpoint: str | os.PathLike, data: bool = True):
    """``(built, ckpt, path)``: the model rebuilt from the checkpoint's resolved spec, with its
    saved parameters loaded."""
    from bpcli.app.model.build import build
    from bpcli.app.spec.schema import resolve

    path = _resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(path)
    require(ckpt, ("spec", "model"), path)
    raw = ckpt["spec"]
    graph = runs.graph_of(path) if "onnx" in raw.get("model", {}) else None
    if graph is not None:  # the run's own copy of the imported graph, not the original file
        raw = {**raw, "model": {**raw["model"], "onnx": str(graph)}}
    spec = resolve(raw, str(path))
    built = build(spec, data=data)
    try:
        built.model.load_state_dict(ckpt["model"])
    except BpcliError as e:
        raise BpcliError(f"parameters do not fit the model: {e.msg}", str(path)) from None
    return built, ckpt, path


def evaluate(checkpoint: str | os.PathLike, dataset: str | None = None) -> EvalResult:
    """Metrics of a checkpoint on its spec's test split (else its val split), or on
    ``dataset``: a registered dataset name or a data file (.npz/.csv/...), standardised as
    the training data were."""
    built, ckpt, path = restore(checkpoint)
    spec = ckpt["spec"]
    train = spec.get("train", {})
    notes: list[str] = []
    if dataset is None:
        ds = built.splits.test if built.splits.test is not None else built.splits.val
        if ds is None:
            raise BpcliError("the spec has no test or val split; pass --dataset", str(path))
    else:
        ds = _other_dataset(built, dataset, spec, notes, ckpt.get("input_rms"))
    metrics, conf = measure(built, ds, train.get("batch_size", 32), train.get("bptt", 64),
                            confusion=built.task == "classification")  # fmt: skip
    classes = list(ds.classes) if ds.classes and built.task == "classification" else None
    return EvalResult(path, ds.name, built.task, len(ds), metrics, conf, classes,
                      ckpt.get("epoch"), spec.get("name", ""), notes)  # fmt: skip


def _other_dataset(built, name: str, spec: dict, notes: list[str], rms=None) -> Dataset:
    from bpcli.data.sources import resolve_source
    from bpcli.plugins.manager import registry

    d = spec["data"]
    kind, options = resolve_source(name, {}, None, name in registry("dataset"))
    if kind == d["dataset"]:  # the training data's loader: read this file the same way
        options = {**d["options"], **options}
    try:
        ds = registry("dataset").get(kind)(**options)
    except TypeError as e:
        raise BpcliError(f"cannot load the dataset: {e}", name) from None
    if ds.task == "classification" and built.task == "classification":
        ds = align_classes(ds, built.classes, built.n_classes, name)
    if ds.task != built.task:
        raise BpcliError(f"a {ds.task} dataset for a {built.task} model", name)
    if built.task != "language":
        ds = ds.with_x(fit_shape(ds.x, tuple(built.input_shape), name))
        note = scale_warning(ds.x, rms)
        if note:
            notes.append(note)
        if built.standardizer is not None:
            ds = ds.with_x(built.standardizer.transform(ds.x))
        elif ds.x.dtype.kind == "f" and ds.x.dtype != np.float32:
            ds = ds.with_x(ds.x.astype(np.float32))
    return ds
