"""``bpcli predict``: a checkpoint run on a user's raw inputs, preprocessed as in training.

Classifiers give arg-max ids, their class names and the probabilities; regression models
their predictions; language models the next-token probabilities after each input text.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcli.app.training.evaluate import EVAL_BATCH, restore
from bpcli.app.training.inputs import fit_shape, read_inputs, scale_warning
from bpcli.data import Standardizer, iter_batches
from bpcli.engine.grad_mode import no_grad
from bpcli.errors import BpcliError


@dataclass
class PredictResult:
    """Where the predictions went and what they are."""

    out_path: Path
    n_samples: int
    task: str
    keys: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # predicted samples per class name
    warnings: list[str] = field(default_factory=list)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def preprocess(x: np.ndarray, ckpt: dict, where: str) -> np.ndarray:
    """Raw inputs as the model saw them in training: shaped, standardised, float32."""
    x = fit_shape(x, tuple(ckpt.get("input_shape") or ()), where)
    std = ckpt.get("standardizer")
    return Standardizer.from_state_dict(std).transform(x) if std else x.astype(np.float32)


def run_model(model, x: np.ndarray) -> np.ndarray:
    model.eval()
    outs = []
    with no_grad():
        for xb, _ in iter_batches(x, None, EVAL_BATCH, shuffle=False):
            outs.append(model(xb).data)
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def predict(checkpoint: str | os.PathLike, input_path: str | os.PathLike,
            out_path: str | os.PathLike | None = None) -> PredictResult:  # fmt: skip
    """Predict the samples of ``input_path``: an .npz (its array ``x``, or its only array) or
    .npy, a CSV (the label column, when present, is left out), an image folder, an IDX
    file, or for a language model a text file.

    Writes ``<input>.pred.npz`` next to the input unless ``out_path`` is given (``.csv``
    writes one line per sample), with ``classes`` (arg-max ids), ``labels`` (their names)
    and ``probabilities`` for classifiers, ``predictions`` for regression.
    """
    built, ckpt, _ = restore(checkpoint, data=False)
    src = Path(input_path)
    dest = Path(out_path) if out_path is not None else src.with_name(f"{src.stem}.pred.npz")
    if dest.suffix.lower() not in (".npz", ".csv"):
        raise BpcliError("the predictions go to an .npz or .csv file", str(dest))
    if built.task == "language":
        from bpcli.app.training.generate import next_token_arrays

        arrays = next_token_arrays(built, ckpt, src)
        return _write(dest, arrays, built.task, [])
    x = read_inputs(src, ckpt.get("spec", {}), tuple(ckpt.get("input_shape") or ()))
    notes = [n for n in [scale_warning(x, ckpt.get("input_rms"))] if n]
    out = run_model(built.model, preprocess(x, ckpt, str(src)))
    if built.task == "classification":
        probs = softmax(out.astype(np.float64)).astype(np.float32)
        ids = out.argmax(-1)
        names = ckpt.get("classes") or [str(i) for i in range(out.shape[-1])]
        arrays = {"classes": ids, "labels": np.array([names[i] for i in ids], dtype=str),
                  "probabilities": probs}  # fmt: skip
    else:
        arrays = {"predictions": out}
    return _write(dest, arrays, built.task, notes, ckpt.get("classes"))


def _write(dest: Path, arrays: dict, task: str, notes: list[str], names=None) -> PredictResult:
    try:
        if dest.suffix.lower() == ".csv":
            _write_csv(dest, arrays, names)
        else:
            np.savez(dest, **arrays)
    except OSError as e:
        raise BpcliError(f"cannot write the predictions: {e.strerror or e}", str(dest)) from None
    n = len(next(iter(arrays.values())))
    counts = {}
    if "labels" in arrays:
        values, k = np.unique(arrays["labels"], return_counts=True)
        counts = {str(v): int(c) for v, c in zip(values, k, strict=True)}
    return PredictResult(dest, n, task, list(arrays), counts, notes)


def _write_csv(dest: Path, arrays: dict, names) -> None:
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if "probabilities" in arrays:
            probs = arrays["probabilities"]
            cols = names or [str(i) for i in range(probs.shape[-1])]
            w.writerow(["class", "label", *[f"p_{c}" for c in cols]])
            for i, row in enumerate(probs):
                w.writerow([int(arrays["classes"][i]), arrays["labels"][i],
                            *[f"{v:.6g}" for v in row]])  # fmt: skip
        else:
            pred = arrays["predictions"].reshape(len(arrays["predictions"]), -1)
            w.writerow([f"prediction_{j}" for j in range(pred.shape[1])] if pred.shape[1] > 1
                       else ["prediction"])  # fmt: skip
            for row in pred:
                w.writerow([f"{v:.6g}" for v in row])
