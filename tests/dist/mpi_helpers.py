"""Launching ``mpiexec`` from tests: always with a timeout, and the whole job (mpiexec and
its ranks, in their own session) killed when it runs out, so a hang fails instead of waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
RANK_MAIN = Path(__file__).with_name("rank_main.py")
MPIEXEC = Path(sys.executable).parent / "mpiexec"

needs_mpi = pytest.mark.skipif(
    not MPIEXEC.exists() or __import__("importlib").util.find_spec("mpi4py") is None,
    reason="needs bpcli[mpi] (mpi4py and the mpich wheel's mpiexec)",
)


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        e.pop(var, None)  # a test run under mpiexec must not make its children think so
    return e


def run(cmd: list[str], timeout: float, cwd=None, extra_env=None) -> subprocess.CompletedProcess:
    p = subprocess.Popen(cmd, cwd=cwd, env=env(**(extra_env or {})), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"no exit within {timeout} s (a hang): {cmd}\n{err[-2000:]}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def bpcli(*args: str, timeout: float = 120, cwd=None, extra_env=None):
    return run([sys.executable, "-m", "bpcli", *args], timeout, cwd, extra_env)


def mpi(n: int, *args: str, timeout: float = 180, cwd=None, extra_env=None,
        prog: tuple[str, ...] = ("-m", "bpcli")):  # fmt: skip
    """``mpiexec -n n python -m bpcli ARGS`` (or ``python PROG ARGS``)."""
    return run([str(MPIEXEC), "-n", str(n), sys.executable, *prog, *args], timeout, cwd,
               extra_env)  # fmt: skip


def params(run_dir: Path, which: str = "last") -> dict[str, np.ndarray]:
    from bpcli.app.store.checkpoint import load_checkpoint

    return load_checkpoint(Path(run_dir) / f"{which}.npz")["model"]


def epochs(run_dir: Path) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == "epoch"]


def max_rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest |a - b| over each tensor's largest |a| (float32 summation order is the noise)."""
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-30)) for k in a)


def assert_same_metrics(r1: list[dict], r2: list[dict], tol: float) -> None:
    assert len(r1) == len(r2) and r1
    for x, y in zip(r1, r2):
        for k in x:
            if k.startswith(("train_", "val_", "test_")):
                assert abs(x[k] - y[k]) <= tol * max(1.0, abs(x[k])), (k, x[k], y[k])
            elif k in ("epoch", "step", "lr"):
                assert x[k] == y[k], k
