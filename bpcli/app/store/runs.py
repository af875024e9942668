"""Run directories: where a training run puts its spec, manifest, metrics and checkpoints.

A run directory holds ``spec.toml`` (the resolved spec), ``manifest.json`` (seed, versions,
data hash, command line), ``metrics.jsonl`` (one JSON object per line) and the checkpoints
``last.npz`` and ``best.npz``. A run that fine-tunes an ONNX file keeps a copy of it as
``graph.onnx``, so the run's checkpoints still load when the original is moved or changed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bpcli.errors import BpcliError

SPEC_FILE = "spec.toml"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
LAST = "last.npz"
BEST = "best.npz"
GRAPH_FILE = "graph.onnx"
# What --overwrite removes: only files a run writes, never anything else the user keeps there.
RUN_FILES = (SPEC_FILE, MANIFEST_FILE, METRICS_FILE, LAST, BEST, GRAPH_FILE, f".{LAST}.partial",
             f".{BEST}.partial", f".{GRAPH_FILE}.partial")  # fmt: skip


def default_run_dir(name: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if that exists already."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def prepare_run_dir(out_dir: str | os.PathLike | None, name: str, overwrite: bool = False) -> Path:
    """Create the directory of a new run; an existing non-empty one is refused unless
    ``overwrite`` (which deletes only the files a run writes)."""
    path = Path(out_dir) if out_dir is not None else default_run_dir(name)
    if path.exists() and not path.is_dir():
        raise BpcliError("exists and is not a directory", str(path))
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise BpcliError(
                "output directory exists and is not empty; pass --resume to continue that "
                "run, --overwrite to replace it, or --out to choose another directory",
                str(path),
            )
        for fname in RUN_FILES:
            _guard(path / fname, lambda p: p.unlink(missing_ok=True))
    _guard(path, lambda p: p.mkdir(parents=True, exist_ok=True))
    return path


def resume_run_dir(run_dir: str | os.PathLike) -> Path:
    """The directory of a run to continue; it must hold ``last.npz``."""
    path = Path(run_dir)
    if path.is_file() and path.suffix == ".npz":
        path = path.parent
    if not path.is_dir():
        raise BpcliError("no such run directory to resume", str(path))
    if not (path / LAST).exists():
        raise BpcliError(f"nothing to resume: the run directory has no {LAST}", str(path))
    return path


def write_text(path: Path, text: str) -> None:
    """Write a small file through a temporary so a failure leaves no half file."""
    tmp = path.with_name(f".{path.name}.partial")

    def write(_):
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    _guard(path, write)


def write_spec(run_dir: Path, spec) -> None:
    """The resolved spec, and a copy of the ONNX file it fine-tunes, if any."""
    write_text(run_dir / SPEC_FILE, spec.to_toml())
    if "onnx" in spec.model:
        copy_graph(run_dir, Path(spec.model["onnx"]))


def copy_graph(run_dir: Path, source: Path) -> None:
    """The imported ONNX file, copied into the run (through a temporary, as every run file)."""
    target = run_dir / GRAPH_FILE
    tmp = target.with_name(f".{GRAPH_FILE}.partial")

    def copy(_):
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    _guard(target, copy)


def graph_of(checkpoint: Path) -> Path | None:
    """The ONNX copy of the run a checkpoint belongs to, if it has one."""
    path = Path(checkpoint).resolve().parent / GRAPH_FILE
    return path if path.is_file() else None


def build_manifest(seed: int, data: dict | None, argv: list[str] | None) -> dict[str, Any]:
    """Seed, library versions, data description (with its sha256), command line, host."""
    import numba
    import numpy

    import bpcli

    return {
        "seed": seed,
        "versions": {
            "bpcli": bpcli.__version__,
            "numpy": numpy.__version__,
            "numba": numba.__version__,
            "python": platform.python_version(),
        },
        "data": data,
        "argv": list(sys.argv if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_text(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def note_resume(run_dir: Path, epoch: int, step: int, argv: list[str] | None) -> None:
    """Record in the manifest that the run was resumed, when and by which command."""
    path = run_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a missing or damaged manifest does not stop a resume
    manifest.setdefault("resumed", []).append({
        "epoch": epoch, "step": step, "argv": list(sys.argv if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })  # fmt: skip
    write_manifest(run_dir, manifest)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``, flushed line by line.

    Args:
        path: the file.
        keep_until_step: when resuming, drop the records written after the checkpoint's step
            (they will be written again), so the log reads as if the run was never stopped.
    """

    def __init__(self, path: str | os.PathLike, keep_until_step: int | None = None):
        self.path = Path(path)
        if keep_until_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= keep_until_step]
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._f = _guard(self.path, lambda p: open(p, "a", encoding="utf-8"))

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        _guard(self.path, lambda _: (self._f.write(line), self._f.flush()))

    def write_lines(self, lines: list[str]) -> None:
        """Lines already in JSON (diagnostics format theirs), in one write."""
        text = "\n".join(lines) + "\n" if lines else ""
        _guard(self.path, lambda _: (self._f.write(text), self._f.flush()))

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _guard(path: Path, action):
    """Run ``action(path)``; an OSError (unwritable, disk full) becomes a BpcliError."""
    try:
        return action(path)
    except OSError as e:
        raise BpcliError(f"cannot write: {e.strerror or e}", str(path)) from None
