"""``bpcli bench --workers N``: samples/s of training epochs, one process against N ranks.

For each workload, ``bpcli train`` runs in fresh processes as 1 process x 1 thread, 1 process
x N threads and N ranks x 1 thread; the figure is the best warm epoch (epochs after the
first, whose Numba compilation and page faults it would otherwise count). The allreduce of
each workload's gradient buffer is timed on its own under mpiexec (``_allreduce_main``).
Scaling efficiency = (N-rank samples/s) / (N x one process with one thread).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcli.dist.launch import mpiexec_path

MODELS = Path(__file__).resolve().parents[2] / "models"
# The large workload: an MLP 784-1024-1024-10 at global batch 512, on random data.
WIDE = """name = "mlp-784-1024"
seed = 0
[data]
dataset = "npz"
options = {{path = "{data}"}}
val = 0.0
[model]
layers = [{{type = "linear", out_features = 1024}}, {{type = "relu"}},
          {{type = "linear", out_features = 1024}}, {{type = "relu"}},
          {{type = "linear", out_features = 10}}]
[optimizer]
type = "sgd"
lr = 0.01
[train]
batch_size = 512
"""


@dataclass
class Row:
    workload: str
    n_params: int
    samples_per_s: dict[str, float] = field(default_factory=dict)
    allreduce_ms: float = 0.0
    allreduce_gb_s: float = 0.0

    def speedup(self, workers: int) -> float:
        return self.samples_per_s[f"{workers}x1"] / self.samples_per_s["1x1"]

    def efficiency(self, workers: int) -> float:
        return self.speedup(workers) / workers


def _specs(tmp: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, 784), dtype=np.float32)
    np.savez(tmp / "wide.npz", x=x, y=rng.integers(0, 10, 8192))
    (tmp / "wide.toml").write_text(WIDE.format(data=(tmp / "wide.npz").as_posix()))
    return {"mlp-digits": MODELS / "mlp-digits.toml", "mlp-784-1024x2": tmp / "wide.toml",
            "cnn-digits": MODELS / "cnn-digits.toml"}  # fmt: skip


def _epoch_rate(spec: Path, tmp: Path, ranks: int, threads: int, epochs: int) -> float:
    out = tmp / f"run-{spec.stem}-{ranks}-{threads}"
    cmd = [sys.executable, "-m", "bpcli", "train", str(spec), "--epochs", str(epochs), "--out",
           str(out), "--overwrite", "--no-diagnose", "-q", "--threads", str(threads)]  # fmt: skip
    if ranks > 1:
        cmd = [mpiexec_path(), "-n", str(ranks), *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    rates = [r["samples_per_s"] for r in map(json.loads, lines) if r.get("kind") == "epoch"]
    return max(rates[1:] or rates)


def _allreduce(n_floats: int, workers: int) -> tuple[float, float]:
    cmd = [mpiexec_path(), "-n", str(workers), sys.executable, "-m", "bpcli.dist.bench",
           str(n_floats)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seconds = float(out.split()[0])
    return seconds * 1e3, n_floats * 4 / seconds / 1e9


def _n_params(spec: Path) -> int:
    from bpcli.app.model.build import build
    from bpcli.app.spec.schema import load_spec

    return build(load_spec(str(spec))).model.num_parameters()


def run(workers: int = 2, epochs: int = 3, only=None) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, spec in _specs(tmp).items():
            if only and name not in only:
                continue
            row = Row(name, _n_params(spec))
            for ranks, threads in ((1, 1), (1, workers), (workers, 1)):
                row.samples_per_s[f"{ranks}x{threads}"] = _epoch_rate(spec, tmp, ranks, threads,
                                                                      epochs)  # fmt: skip
            row.allreduce_ms, row.allreduce_gb_s = _allreduce(row.n_params, workers)
            rows.append(row)
    return rows


def _allreduce_main(n_floats: int, reps: int = 200) -> None:
    """Under mpiexec: the median seconds of one in-place float32 Allreduce of n_floats."""
    import time

    from bpcli.dist.comm import Comm

    comm = Comm()
    buf = np.ones(n_floats, np.float32)
    times = []
    for _ in range(reps + 10):
        comm.world.Barrier()
        t = time.perf_counter()
        comm.allreduce_(buf)
        times.append(time.perf_counter() - t)
    if comm.rank == 0:
        print(float(np.median(times[10:])))


if __name__ == "__main__":
    _allreduce_main(int(sys.argv[1]))
