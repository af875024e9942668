"""``bpcli sweep``: short trainings over a grid of learning rates x initialisers x seeds.

Each run is ``bpcli.app.training.loop.train`` of the spec with ``optimizer.lr``, ``model.init``,
``seed`` and ``train.epochs`` overridden, in its own directory under the sweep folder, in up to
``jobs`` worker processes (spawned, so no worker inherits a half-initialised Numba threading
layer or a parent's plugin state; each imports bpcli once and then takes runs in turn).

A run *diverged* when it stopped on non-finite values, or its last epoch's mean training
loss is not below the loss of its first batch (the loss before any update). Per initialiser,
the *stable region* is the contiguous range of grid learning rates around that initialiser's
best learning rate in which no seed diverged. Results go to ``runs.csv`` (one row per run) and
``sweep.json`` in the sweep folder.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bpcli.errors import BpcliError

# Short names for the usual initialisers (others are passed on as registry names).
INIT_ALIASES = {
    "he": '{type = "he_normal", nonlinearity = "relu"}',
    "kaiming": '{type = "he_normal", nonlinearity = "relu"}',
    "xavier": '"xavier_normal"',
    "glorot": '"xavier_normal"',
    "lecun": '"lecun_normal"',
    "normal": '{type = "normal", std = 0.1}',
}
CSV_FIELDS = ("lr", "init", "seed", "status", "initial_loss", "final_loss", "val_loss",
              "accuracy", "metric", "epochs_run", "seconds", "run_dir", "message")  # fmt: skip


def parse_lrs(text: str) -> list[float]:
    """``"1e-4:1e0:9"`` (9 log-spaced values, both ends included) or ``"1e-3,3e-3,1e-2"``."""
    where = "--lr"
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            lo_f, hi_f, n_i = float(lo), float(hi), int(n)
            if not (0 < lo_f < hi_f < math.inf and n_i >= 2):
                raise ValueError
            return [float(v) for v in np.geomspace(lo_f, hi_f, n_i)]
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BpcliError(f"expected LO:HI:N with 0 < LO < HI and N >= 2, or a comma list of "
                         f"positive numbers, got {text!r}", where) from None  # fmt: skip
    if not values or any(not 0 < v < math.inf for v in values):
        raise BpcliError(f"learning rates must be positive numbers, got {text!r}", where)
    return sorted(set(values))


def init_override(name: str) -> str:
    return f"model.init={INIT_ALIASES.get(name, json.dumps(name))}"


@dataclass
class SweepRun:
    lr: float
    init: str
    seed: int
    status: str  # "ok", "diverged" or "error"
    initial_loss: float | None = None
    final_loss: float | None = None
    val_loss: float | None = None
    accuracy: float | None = None
    metric: float | None = None
    epochs_run: int = 0
    seconds: float = 0.0
    run_dir: str = ""
    message: str = ""


@dataclass
class SweepResult:
    """The grid, every run, and what was learnt from them."""

    spec: str
    lrs: list[float]
    inits: list[str]
    seeds: list[int]
    epochs: int
    metric: str  # "accuracy" (higher is better) or "loss"
    runs: list[SweepRun] = field(default_factory=list)
    out_dir: str = ""
    seconds: float = 0.0

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def cell(self, init: str, lr: float) -> tuple[float | None, bool]:
        """(mean metric over seeds, diverged in any seed) of one grid cell."""
        rs = [r for r in self.runs if r.init == init and r.lr == lr]
        diverged = any(r.status != "ok" for r in rs)
        vals = [r.metric for r in rs if r.metric is not None and math.isfinite(r.metric)]
        return (float(np.mean(vals)) if vals and not diverged else None), diverged

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def _loss(self, init: str, lr: float) -> float:
        vals = [r.final_loss for r in self.runs if r.init == init and r.lr == lr
                and r.final_loss is not None]  # fmt: skip
        return float(np.mean(vals)) if vals else math.inf

    def best(self) -> tuple[str, float, float] | None:
        """(init, lr, metric) of the best cell without divergence (ties: lower final loss)."""
        out, key = None, None
        for init in self.inits:
            for lr in self.lrs:
                v, bad = self.cell(init, lr)
                if v is None or bad:
                    continue
                k = (v if self.higher_is_better else -v, -self._loss(init, lr))
                if key is None or k > key:
                    out, key = (init, lr, v), k
        return out

    def stable_region(self, init: str) -> tuple[float, float] | None:
        """The contiguous LR range around ``init``'s best LR where no run diverged."""
        cells = [self.cell(init, lr) for lr in self.lrs]
        ok = [v is not None and not bad for v, bad in cells]
        if not any(ok):
            return None
        best_i = None
        for i, (v, _) in enumerate(cells):
            if ok[i] and (best_i is None or self._better(v, cells[best_i][0])):
                best_i = i
        lo = hi = best_i
        while lo > 0 and ok[lo - 1]:
            lo -= 1
        while hi < len(ok) - 1 and ok[hi + 1]:
            hi += 1
        return self.lrs[lo], self.lrs[hi]

    def to_dict(self) -> dict:
        best = self.best()
        return {
            "spec": self.spec, "lrs": self.lrs, "inits": self.inits, "seeds": self.seeds,
            "epochs": self.epochs, "metric": self.metric, "out_dir": self.out_dir,
            "seconds": self.seconds,
            "best": None if best is None else {"init": best[0], "lr": best[1], "metric": best[2]},
            "stable_region": {i: self.stable_region(i) for i in self.inits},
            "runs": [asdict(r) for r in self.runs],
        }  # fmt: skip


class _FirstLoss:
    """A train Reporter that keeps the loss of the first batch (before any update)."""

    def __init__(self):
        self.first = None

    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s):
        if self.first is None:
            self.first = float(loss)

    def __getattr__(self, name):  # the other Reporter methods: nothing to do
        return lambda *a, **k: None


def run_one(spec_path: str, lr: float, init: str, seed: int, epochs: int, run_dir: str,
            sets: tuple[str, ...] = ()) -> SweepRun:  # fmt: skip
    """One grid point (a top-level function, so worker processes can run it)."""
    from bpcli.app.spec.schema import load_spec
    from bpcli.app.training.loop import train

    t0 = time.perf_counter()
    run = SweepRun(lr, init, seed, "error", run_dir=run_dir)
    overrides = [*sets, f"optimizer.lr={lr!r}", init_override(init), f"seed={seed}",
                 f"train.epochs={epochs}"]  # fmt: skip
    rep = _FirstLoss()
    try:
        spec = load_spec(spec_path, overrides)
        res = train(spec, out_dir=run_dir, overwrite=True, reporter=rep,
                    argv=["bpcli", "sweep", spec_path, *overrides])  # fmt: skip
    except BpcliError as e:
        run.message, run.seconds = str(e), time.perf_counter() - t0
        return run
    last = res.history[-1] if res.history else {}
    run.initial_loss, run.epochs_run = rep.first, res.epochs_run
    run.final_loss = last.get("train_loss")
    run.val_loss = last.get("val_loss")
    run.accuracy = last.get("val_accuracy", last.get("train_accuracy"))
    run.metric = run.accuracy if run.accuracy is not None else (
        run.val_loss if run.val_loss is not None else run.final_loss)  # fmt: skip
    finite = run.final_loss is not None and math.isfinite(run.final_loss)
    if res.stopped_reason == "non-finite" or not finite:
        run.status, run.message = "diverged", res.message or "non-finite loss"
    elif rep.first is not None and run.final_loss >= rep.first:
        run.status = "diverged"
        run.message = f"final loss {run.final_loss:.4g} >= initial {rep.first:.4g}"
    else:
        run.status = "ok"
    run.seconds = time.perf_counter() - t0
    return run


def sweep(spec_path: str | Path, lrs: list[float], inits: list[str], epochs: int = 3,
          seeds: int = 1, jobs: int = 1, out_dir: str | Path | None = None,
          sets: tuple[str, ...] = (), on_run=None,
          map_runs=None) -> SweepResult | None:  # fmt: skip
    """Train every (lr, init, seed) for ``epochs`` epochs; ``on_run(run, done, total)`` is
    called as each finishes. ``jobs > 1`` runs them in that many worker processes.
    ``map_runs(run_one, args_list)`` runs them instead (``bpcli.dist.sweep``: over MPI ranks);
    where it returns None another process gathers the results, and so does this function."""
    from bpcli.app.spec.schema import load_spec

    t0 = time.perf_counter()
    for name, v, lo in (("--epochs", epochs, 1), ("--seeds", seeds, 1), ("--jobs", jobs, 1)):
        if not (isinstance(v, int) and v >= lo):
            raise BpcliError(f"must be an integer >= {lo}, got {v!r}", name)
    if not inits:
        raise BpcliError("give at least one initialiser", "--init")
    spec_path = str(spec_path)
    probe = load_spec(spec_path, [*sets, *(init_override(i) for i in inits[:1])])
    for init in inits[1:]:  # an unknown initialiser is reported before any run starts
        load_spec(spec_path, [*sets, init_override(init)])
    base = probe.seed
    out = (
        Path(out_dir)
        if out_dir
        else Path("runs") / f"sweep-{probe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if out.exists() and any(out.iterdir()) and not (out / "sweep.json").exists():
        raise BpcliError("exists and is not a sweep folder; choose another --out", str(out))
    out.mkdir(parents=True, exist_ok=True)
    grid = [(lr, init, base + s) for init in inits for lr in lrs for s in range(seeds)]
    jobs_args = [(spec_path, lr, init, seed, epochs,
                  str(out / f"{_slug(init)}-lr{lr:.3g}-seed{seed}"), tuple(sets))
                 for lr, init, seed in grid]  # fmt: skip
    result = SweepResult(spec_path, list(lrs), list(inits), [base + s for s in range(seeds)],
                         epochs, "loss", out_dir=str(out))  # fmt: skip
    if map_runs is not None:
        runs = map_runs(run_one, jobs_args)
        if runs is None:
            return None
        for i, run in enumerate(runs):
            result.runs.append(run)
            if on_run:
                on_run(run, i + 1, len(runs))
    elif jobs == 1:
        for i, a in enumerate(jobs_args):
            result.runs.append(run_one(*a))
            if on_run:
                on_run(result.runs[-1], i + 1, len(jobs_args))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(jobs_args)), mp_context=ctx) as ex:
            futures = [ex.submit(run_one, *a) for a in jobs_args]
            for i, f in enumerate(futures):
                result.runs.append(f.result())
                if on_run:
                    on_run(result.runs[-1], i + 1, len(jobs_args))
    if any(r.accuracy is not None for r in result.runs):
        result.metric = "accuracy"
    result.seconds = time.perf_counter() - t0
    _write(result, out)
    return result


def _slug(init: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in init)


def _write(result: SweepResult, out: Path) -> None:
    with open(out / "runs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in result.runs:
            w.writerow(asdict(r))
    (out / "sweep.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n",
                                    encoding="utf-8")  # fmt: skip
