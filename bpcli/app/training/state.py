"""The state of a training run that a checkpoint must hold for an exact resume.

``LoopState.payload()`` is what ``last.npz``/``best.npz`` store: parameters and buffers,
optimizer and schedule state, the standardizer, the position in the run (epoch, step, batch
within an interrupted epoch with that epoch's shuffle state and running sums, the recurrent
state), every RNG state, the best value so far and the metrics history.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.app.training.evaluate import Meter
from bpcli.engine import random as bprandom
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

FORMAT_FIELDS = ("task", "n_classes", "classes", "input_shape")


class LoopState:
    def __init__(self, spec, built, total: int, spec_hash: str):
        import bpcli

        self.spec, self.built, self.total, self.spec_hash = spec, built, total, spec_hash
        self.version = bpcli.__version__
        self.epoch = self.step = self.batch = 0
        self.shuffle = np.random.default_rng((spec.seed, 1))
        self.epoch_shuffle: dict | None = None
        self.meter = Meter(built.task)
        self.epoch_seconds = 0.0
        self.hidden = None
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.best_state: dict[str, np.ndarray] | None = None
        early = spec.train.get("early_stopping")
        has_val = built.splits.val is not None
        if early is not None:
            self.monitor, self.mode = early["metric"], early["mode"]
            self.patience, self.min_delta = early["patience"], early["min_delta"]
            if self.monitor.startswith("val_") and not has_val:
                raise BpcliError(
                    f"{self.monitor} needs a validation split (data.val > 0); use "
                    f"{'train_' + self.monitor[4:]} or add data.val",
                    "train.early_stopping.metric",
                )
        else:
            self.monitor = "val_loss" if has_val else "train_loss"
            self.mode, self.patience, self.min_delta = "min", None, 0.0
        known = metric_names(built.task, has_val)
        if self.monitor not in known:
            raise BpcliError(
                f"{self.monitor!r} is not measured for this run; choose one of {', '.join(known)}",
                "train.early_stopping.metric",
            )

    # -- best and early stopping ---------------------------------------------------------------
    def update_best(self, record: dict[str, Any]) -> bool:
        value = record[self.monitor]
        if self.best is None:
            better = math.isfinite(value)
        elif self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, record["epoch"], 0
        else:
            self.bad_epochs += 1
        return better

    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def history_record(self, epoch: int) -> dict[str, Any]:
        return next(r for r in self.history if r["epoch"] == epoch)

    # -- checkpoints ----------------------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        b = self.built
        return {
            "bpcli_version": self.version,
            "spec": self.spec.to_dict(), "spec_hash": self.spec_hash,
            "model": b.model.state_dict(),
            "optim": b.optimizer.state_dict(),
            "sched": None if b.scheduler is None else b.scheduler.state_dict(),
            "standardizer": None if b.standardizer is None else b.standardizer.state_dict(),
            "epoch": self.epoch, "step": self.step,
            "position": {
                "batch": self.batch, "epoch_shuffle": self.epoch_shuffle,
                "meter": self.meter.state(), "epoch_seconds": self.epoch_seconds,
                "hidden": hidden_arrays(self.hidden),
            },
            "rng": {
                "engine": bprandom.default_rng().bit_generator.state,
                "shuffle": self.shuffle.bit_generator.state,
                "modules": {n: g.bit_generator.state for n, g in _module_generators(b.model)},
            },
            "best": {"value": self.best, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "history": self.history,
            "task": b.task, "n_classes": b.n_classes,
            "classes": list(b.classes) if b.classes else None,
            "input_shape": list(b.input_shape),
            "input_rms": b.input_rms,
        }  # fmt: skip

    def load(self, ckpt: dict[str, Any], path: Path) -> None:
        b = self.built
        try:
            b.model.load_state_dict(ckpt["model"])
            b.optimizer.load_state_dict(ckpt["optim"])
            if b.scheduler is not None and ckpt.get("sched") is not None:
                b.scheduler.load_state_dict(ckpt["sched"])
            pos, rng, best = ckpt["position"], ckpt["rng"], ckpt["best"]
            self.epoch, self.step, self.batch = ckpt["epoch"], ckpt["step"], pos["batch"]
            self.epoch_shuffle = pos["epoch_shuffle"]
            self.meter.load(pos["meter"])
            self.epoch_seconds = pos["epoch_seconds"]
            self.hidden = hidden_tensors(pos["hidden"])
            bprandom.default_rng().bit_generator.state = rng["engine"]
            self.shuffle.bit_generator.state = rng["shuffle"]
            gens = dict(_module_generators(b.model))
            for name, state in rng["modules"].items():
                if name in gens:
                    gens[name].bit_generator.state = state
            self.best, self.best_epoch = best["value"], best["epoch"]
            self.bad_epochs = best["bad_epochs"]
            self.history = list(ckpt["history"])
        except BpcliError as e:
            raise BpcliError(f"cannot resume: {e}", str(path)) from None
        except (KeyError, TypeError, ValueError) as e:
            raise BpcliError(f"corrupted checkpoint: bad or missing {e}", str(path)) from None
        if self.epoch >= self.total:
            raise BpcliError(
                f"the run already has {self.epoch} epochs; pass --epochs N with N > {self.epoch} "
                "to train longer",
                "--resume",
            )


def metric_names(task: str, has_val: bool) -> list[str]:
    """The per-epoch metrics a run of this task measures (what early stopping may watch)."""
    names = ["loss"] + (["accuracy"] if task != "regression" else [])
    names += ["perplexity"] if task == "language" else []
    names += ["mae", "rmse", "r2"] if task == "regression" else []
    return [f"{p}_{n}" for p in ("train", "val")[: 1 + has_val] for n in names]


def _module_generators(model):
    for name, m in model.named_modules():
        g = getattr(m, "generator", None)
        if isinstance(g, np.random.Generator):
            yield name, g


def hidden_arrays(state):
    """A recurrent state (Tensors in nested tuples) as nested lists of arrays."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.data.copy()
    return [hidden_arrays(s) for s in state]


def hidden_tensors(saved):
    """Inverse of ``hidden_arrays`` (lists come back as tuples, as RNN layers return them)."""
    if saved is None:
        return None
    if isinstance(saved, np.ndarray):
        return Tensor(saved)
    return tuple(hidden_tensors(s) for s in saved)


def find_nonfinite(params: list[tuple[str, Any]], loss: float) -> tuple[str, str] | None:
    """None if the loss and every gradient are finite; else ``(name, shape)`` of the first
    parameter in model order whose gradient is not finite (``("", "")`` if only the loss is)."""
    total = 0.0
    for _, p in params:
        if p.grad is not None:
            # NOTE: a float64 sum of finite float32 values cannot overflow, so a non-finite sum
            # means a non-finite element: one reduction per parameter, no temporaries.
            total += float(p.grad.sum(dtype=np.float64))
    if math.isfinite(loss) and math.isfinite(total):
        return None
    for name, p in params:
        if p.grad is not None and not np.isfinite(p.grad).all():
            return name, f"shape {tuple(p.shape)}"
    return "", ""
