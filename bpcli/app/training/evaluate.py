"""Evaluation and prediction from a checkpoint, and the metric bookkeeping training shares.

Metric names: ``loss`` (the spec's loss, mean per sample or per token), ``accuracy``
(classification and language: fraction of arg-max hits), ``perplexity`` (language:
``exp(loss)`` of the per-token cross-entropy). Training prefixes them with ``train_``, ``val_``
and ``test_``.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.app.store import runs
from bpcli.app.store.checkpoint import load_checkpoint, require
from bpcli.data import Dataset, Standardizer, bptt_windows, iter_batches, stream_of
from bpcli.engine.grad_mode import no_grad
from bpcli.errors import BpcliError

EVAL_BATCH = 512


class Meter:
    """Running sums of one pass (plain floats: no per-batch allocation beyond the arg-max)."""

    __slots__ = ("confusion", "correct", "count", "loss_sum", "task")

    def __init__(self, task: str, n_classes: int | None = None, confusion: bool = False):
        self.task = task
        self.loss_sum, self.count, self.correct = 0.0, 0, 0
        self.confusion = (
            np.zeros((n_classes, n_classes), np.int64) if confusion and n_classes else None
        )

    def add(self, loss: float, out: np.ndarray, y: np.ndarray) -> None:
        n = y.size if self.task == "language" else len(y)
        self.loss_sum += loss * n
        self.count += n
        if self.task == "regression":
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
        if self.task == "language":
            out[f"{prefix}perplexity"] = perplexity(loss)
        return out

    def state(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "count": self.count, "correct": self.correct}

    def load(self, state: dict[str, Any]) -> None:
        self.loss_sum, self.count = state["loss_sum"], state["count"]
        self.correct = state["correct"]


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
    if dataset is None:
        ds = built.splits.test if built.splits.test is not None else built.splits.val
        if ds is None:
            raise BpcliError("the spec has no test or val split; pass --dataset", str(path))
    else:
        ds = _other_dataset(built, dataset, spec)
    metrics, conf = measure(built, ds, train.get("batch_size", 32), train.get("bptt", 64),
                            confusion=built.task == "classification")  # fmt: skip
    classes = list(ds.classes) if ds.classes and built.task == "classification" else None
    return EvalResult(path, ds.name, built.task, len(ds), metrics, conf, classes,
                      ckpt.get("epoch"), spec.get("name", ""))  # fmt: skip


def _other_dataset(built, name: str, spec: dict) -> Dataset:
    from bpcli.plugins.manager import registry

    p = Path(name)
    try:
        if p.suffix and p.exists():
            kind = {".npz": "npz", ".csv": "csv", ".txt": "text"}.get(p.suffix.lower())
            if kind is None:
                raise BpcliError("unknown data file type (use .npz, .csv or .txt)", name)
            ds = registry("dataset").get(kind)(path=str(p))
        else:
            same = name == spec["data"]["dataset"]
            ds = registry("dataset").get(name)(**(spec["data"]["options"] if same else {}))
    except TypeError as e:
        raise BpcliError(f"cannot load the dataset: {e}", name) from None
    if ds.task != built.task:
        raise BpcliError(f"a {ds.task} dataset for a {built.task} model", name)
    if built.task != "language":
        ds = ds.with_x(_fit_shape(ds.x, tuple(built.input_shape), name))
        if built.standardizer is not None:
            ds = ds.with_x(built.standardizer.transform(ds.x))
        elif ds.x.dtype.kind == "f" and ds.x.dtype != np.float32:
            ds = ds.with_x(ds.x.astype(np.float32))
    return ds


def _fit_shape(x: np.ndarray, expect: tuple[int, ...], where: str) -> np.ndarray:
    """``x`` as ``(n, *expect)``: a lone sample gains its batch axis, images are flattened
    for an MLP (or unflattened) when the sizes agree; anything else is an error."""
    if not expect or tuple(x.shape[1:]) == expect:
        return x
    if x.shape == expect:
        return x[None]
    if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(expect)):
        return x.reshape(len(x), *expect)
    raise BpcliError(
        f"input of shape {x.shape}; expected (n, {', '.join(map(str, expect))})", where
    )


# -- bpcli predict ------------------------------------------------------------------------------
@dataclass
class PredictResult:
    """Where the predictions went and what they are."""

    out_path: Path
    n_samples: int
    task: str
    keys: list[str] = field(default_factory=list)


def predict(checkpoint: str | os.PathLike, input_npz: str | os.PathLike,
            out_path: str | os.PathLike | None = None) -> PredictResult:  # fmt: skip
    """Predict the samples of ``input_npz`` (its array ``x``, or its only array).

    Writes ``<input>.pred.npz`` next to the input unless ``out_path`` is given, with
    ``classes`` (arg-max ids) and ``probabilities`` for classifiers, ``predictions`` for
    regression.
    """
    built, ckpt, path = restore(checkpoint, data=False)
    src = Path(input_npz)
    x = _read_input(src)
    if built.task == "language":
        raise BpcliError("predict does not support language models", str(path))
    x = _fit_shape(x, tuple(ckpt.get("input_shape") or ()), str(src))
    std = ckpt.get("standardizer")
    x = Standardizer.from_state_dict(std).transform(x) if std else x.astype(np.float32)
    built.model.eval()
    outs = []
    with no_grad():
        for xb, _ in iter_batches(x, None, EVAL_BATCH, shuffle=False):
            outs.append(built.model(xb).data)
    out = np.concatenate(outs) if outs else np.zeros((0,), np.float32)
    if built.task == "classification":
        z = out - out.max(axis=-1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=-1, keepdims=True)
        arrays = {"classes": out.argmax(-1), "probabilities": probs.astype(np.float32)}
    else:
        arrays = {"predictions": out}
    dest = Path(out_path) if out_path is not None else src.with_name(f"{src.stem}.pred.npz")
    try:
        np.savez(dest, **arrays)
    except OSError as e:
        raise BpcliError(f"cannot write the predictions: {e.strerror or e}", str(dest)) from None
    return PredictResult(dest, len(x), built.task, list(arrays))


def _read_input(src: Path) -> np.ndarray:
    if not src.exists():
        raise BpcliError("no such input file", str(src))
    try:
        loaded = np.load(src, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy file
            return loaded
        with loaded as z:
            files = list(z.files)
            if "x" in files:
                return np.asarray(z["x"])
            if len(files) == 1:
                return np.asarray(z[files[0]])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        # numpy tries anything that is not .npy/.npz as a pickle, which bpcli never loads
        why = "" if "pickle" in str(e) else f" ({e})"
        raise BpcliError(f"not a .npz or .npy array file{why}", str(src)) from None
    raise BpcliError(
        f"expected an array named 'x' or a single array, found {', '.join(files) or 'none'}",
        str(src),
    )
