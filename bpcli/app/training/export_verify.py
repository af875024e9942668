"""``bpcli export --verify``: onnxruntime against bpcli on the run's own data, fed raw.

Two legs: real samples of the training file as a user would feed them (what the loader gives,
before standardisation), and random ones on the training inputs' scale. bpcli's side is what
``bpcli predict`` computes (preprocess, then the model); onnxruntime gets the raw arrays, so a
preprocessing step missing from the file shows as a difference. For classifiers and language
models the share of samples with the same predicted class must be at least ``AGREEMENT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bpcli.errors import BpcliError

REAL_SAMPLES = 512
RANDOM_SAMPLES = 64
AGREEMENT = 0.999
RTOL, ATOL = 1e-4, 1e-5


def require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise BpcliError("needs onnxruntime to run the file: pip install onnxruntime",
                         "--verify") from None  # fmt: skip


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_quant_qdq", "1")  # as verify.py, see there
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _real_inputs(built, ckpt) -> tuple[np.ndarray, str]:
    """Up to REAL_SAMPLES raw samples of the run's data (token windows for a language model)."""
    from bpcli.app.model.build import load_dataset
    from bpcli.app.training.inputs import fit_shape
    from bpcli.data import stream_of

    ds = load_dataset(built.spec)
    rng = np.random.default_rng(0)
    if built.task == "language":
        stream, t = stream_of(ds), int(built.input_shape[0])
        n = max(1, min(REAL_SAMPLES // 8, len(stream) // t))
        starts = rng.choice(max(1, len(stream) - t), size=n, replace=len(stream) - t < n)
        return np.stack([stream[s : s + t] for s in starts]).astype(np.int64), ds.name
    idx = np.sort(rng.permutation(len(ds))[:REAL_SAMPLES])
    x = fit_shape(ds.x[idx], tuple(ckpt.get("input_shape") or ()), ds.name)
    return x.astype(np.float32), ds.name  # the traced graph input is float32


def _random_inputs(real: np.ndarray, built) -> np.ndarray:
    rng = np.random.default_rng(1)
    if built.task == "language":
        return rng.integers(0, built.n_classes, size=(8, real.shape[1])).astype(np.int64)
    mean, std = real.mean(0, dtype=np.float64), real.std(0, dtype=np.float64)
    z = rng.standard_normal((RANDOM_SAMPLES, *real.shape[1:]))
    return (mean + z * np.where(std > 0, std, 1.0)).astype(real.dtype)


def _bpcli_outputs(built, ckpt, x: np.ndarray, preprocess_in_file: bool) -> list[np.ndarray]:
    from bpcli.app.training.predict import preprocess
    from bpcli.engine.grad_mode import no_grad
    from bpcli.engine.tensor import Tensor
    from bpcli.onnx.exporter.trace import flatten_outputs

    if built.task != "language":
        x = preprocess(x, ckpt, "verify")
    built.model.eval()
    with no_grad():
        return [np.asarray(t.data) for t in flatten_outputs(built.model(Tensor(x)))]


def _feed(built, ckpt, x: np.ndarray, preprocess_in_file: bool) -> np.ndarray:
    if built.task == "language" or preprocess_in_file:
        return x
    from bpcli.app.training.predict import preprocess

    return preprocess(x, ckpt, "verify")  # a file without the steps wants them done first


def _compare(sess, built, ckpt, x, preprocess_in_file: bool) -> dict[str, Any]:
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: _feed(built, ckpt, x, preprocess_in_file)})
    want = _bpcli_outputs(built, ckpt, x, preprocess_in_file)
    per, ok, max_abs, max_rel = {}, True, 0.0, 0.0
    for out, a, b in zip(sess.get_outputs(), got, want, strict=False):
        if a.shape != b.shape:
            raise BpcliError(f"output {out.name}: onnxruntime {a.shape}, bpcli {b.shape}", "verify")
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d_abs = float(diff.max()) if diff.size else 0.0
        rel = diff / np.maximum(np.abs(b.astype(np.float64)), np.finfo(np.float32).tiny)
        d_rel = float(rel.max()) if rel.size else 0.0
        per[out.name] = [d_abs, d_rel]
        ok &= bool(np.all(diff <= ATOL + RTOL * np.abs(b)))
        max_abs, max_rel = max(max_abs, d_abs), max(max_rel, d_rel)
    agreement = None
    if built.task in ("classification", "language"):
        agreement = float(np.mean(got[0].argmax(-1) == want[0].argmax(-1)))
    return {"max_abs": max_abs, "max_rel": max_rel, "ok": ok, "per_output": per,
            "agreement": agreement, "n": len(x)}  # fmt: skip


def verify_export(built, ckpt, path: str | Path, with_preprocessing: bool) -> dict[str, Any]:
    """Compare the file with bpcli on real raw samples and random ones. ``ok`` needs both legs
    within ``RTOL``/``ATOL`` and, for classifiers, ``AGREEMENT`` of the predicted classes."""
    require_onnxruntime()
    sess = _session(Path(path))
    real, source = _real_inputs(built, ckpt)
    legs = {"real": _compare(sess, built, ckpt, real, with_preprocessing),
            "random": _compare(sess, built, ckpt, _random_inputs(real, built),
                               with_preprocessing)}  # fmt: skip
    agree = legs["real"]["agreement"]
    within = all(leg["ok"] for leg in legs.values())
    return {
        "ok": within and (agree is None or agree >= AGREEMENT),
        "max_abs": max(leg["max_abs"] for leg in legs.values()),
        "max_rel": max(leg["max_rel"] for leg in legs.values()),
        "rtol": RTOL, "atol": ATOL, "agreement": agree, "min_agreement": AGREEMENT,
        "source": source, "raw_inputs": with_preprocessing, "legs": legs,
        "per_output": legs["real"]["per_output"],
    }  # fmt: skip
