"""Composite and feedback schedules: SequentialLR, WarmupLR, OneCycleLR, ReduceLROnPlateau."""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

from bpcli.errors import BpcliError
from bpcli.optim.optimizer import Optimizer, _plain
from bpcli.optim.schedules import LinearLR, LRScheduler


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on (torch's SequentialLR): at a
    milestone the next schedule restarts from its epoch 0."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ):
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise self._bad("schedulers", schedulers, "give at least one schedule")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau) or not isinstance(s, LRScheduler):
                raise self._bad(
                    f"schedulers[{i}]",
                    type(s).__name__,
                    "it must be an epoch schedule (not ReduceLROnPlateau)",
                )
            if s.optimizer is not optimizer:
                raise self._bad(
                    f"schedulers[{i}]", type(s).__name__, "it drives a different optimizer"
                )
        if len(milestones) != len(schedulers) - 1 or milestones != sorted(milestones):
            raise self._bad(
                "milestones",
                milestones,
                f"give {len(schedulers) - 1} increasing epochs for {len(schedulers)} schedules",
            )
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        # Undo the step each schedule took when it was built, then restart the first one.
        for s in schedulers:
            _undo(s)
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sched._update_lr(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        out = {
            k: _plain(v) for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")
        }
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        subs = state_dict["_schedulers"]
        if len(subs) != len(self._schedulers):
            raise BpcliError(
                f"the state dict has {len(subs)} schedules, this one has {len(self._schedulers)}",
                self._name,
            )
        for s, sd in zip(self._schedulers, subs, strict=True):
            s.load_state_dict(sd)
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})


def _undo(s: LRScheduler) -> None:
    if isinstance(s, SequentialLR):
        for sub in s._schedulers:
            _undo(sub)
    else:
        s.last_epoch -= 1


class WarmupLR(SequentialLR):
    """Linear warmup for ``warmup_steps`` steps (lr factor ``start_factor`` -> 1), then the
    schedule ``after`` (built on the same optimizer beforehand) or a constant lr.

    Same as ``SequentialLR([LinearLR(opt, start_factor, 1.0, warmup_steps), after],
    milestones=[warmup_steps])``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        after: LRScheduler | None = None,
        start_factor: float = 0.01,
        last_epoch: int = -1,
    ):
        if not (isinstance(warmup_steps, int) and warmup_steps > 0):
            raise self._bad("warmup_steps", warmup_steps, "it must be a positive integer")
        warm = LinearLR(optimizer, start_factor, 1.0, warmup_steps)
        if after is None:
            super().__init__(optimizer, [warm], [], last_epoch)
        else:
            super().__init__(optimizer, [warm, after], [warmup_steps], last_epoch)


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    n = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise BpcliError(f"{name} has {len(value)} values for {n} param groups", "OneCycleLR")
        return list(value)
    return [value] * n


class OneCycleLR(LRScheduler):
    """The 1cycle policy (torch's OneCycleLR): warm up from ``max_lr/div_factor`` to
    ``max_lr``, then anneal to ``initial_lr/final_div_factor`` (cos or linear), optionally in
    three phases; momentum (or beta1) cycles the other way. Step it once per batch."""

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        if total_steps is not None:
            if not (isinstance(total_steps, int) and total_steps > 0):
                raise self._bad("total_steps", total_steps, "it must be a positive integer")
        elif epochs is not None and steps_per_epoch is not None:
            for k, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not (isinstance(v, int) and v > 0):
                    raise self._bad(k, v, "it must be a positive integer")
            total_steps = epochs * steps_per_epoch
        else:
            raise BpcliError("give total_steps, or epochs and steps_per_epoch", self._name)
        if not (isinstance(pct_start, float) and 0 <= pct_start <= 1):
            raise self._bad("pct_start", pct_start, "it must be a float in [0, 1]")
        if anneal_strategy not in ("cos", "linear"):
            raise self._bad("anneal_strategy", anneal_strategy, "use 'cos' or 'linear'")
        self.total_steps = total_steps
        self._anneal_func_type = anneal_strategy
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                _phase(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(
                    float(2 * pct_start * total_steps) - 2,
                    "max_lr",
                    "initial_lr",
                    "base_momentum",
                    "max_momentum",
                ),
                _phase(total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise self._bad(
                    "cycle_momentum",
                    True,
                    f"{type(optimizer).__name__} has neither momentum nor betas",
                )
            self.use_beta1 = "betas" in optimizer.defaults
            maxs = _per_group("max_momentum", optimizer, max_momentum)
            bases = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m, b, group in zip(maxs, bases, optimizer.param_groups, strict=True):
                    self._set_momentum(group, m)
                    group["max_momentum"], group["base_momentum"] = m, b
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, m: float) -> None:
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        n = self.last_epoch
        if n > self.total_steps:
            raise BpcliError(
                f"stepped {n} times, but total_steps is {self.total_steps}", self._name
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if n <= end or i == len(self._schedule_phases) - 1:
                    pct = (n - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        m = self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                        self._set_momentum(group, m)
                    break
                start = phase["end_step"]
        return lrs


def _phase(end_step: float, start_lr: str, end_lr: str, start_m: str, end_m: str) -> dict:
    return {
        "end_step": end_step,
        "start_lr": start_lr,
        "end_lr": end_lr,
        "start_momentum": start_m,
        "end_momentum": end_m,
    }


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has not improved for ``patience`` epochs
    (torch's ReduceLROnPlateau); call ``step(metric)`` once per epoch."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr=0.0,
        eps: float = 1e-8,
    ):
        if not isinstance(optimizer, Optimizer):
            raise BpcliError(f"{type(optimizer).__name__} is not an Optimizer", self._name)
        if not 0 <= factor < 1.0:
            raise self._bad("factor", factor, "it must be in [0, 1)")
        if mode not in ("min", "max"):
            raise self._bad("mode", mode, "use 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise self._bad("threshold_mode", threshold_mode, "use 'rel' or 'abs'")
        for k, v in (("patience", patience), ("cooldown", cooldown)):
            if not (isinstance(v, int) and v >= 0):
                raise self._bad(k, v, "it must be an integer >= 0")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, list | tuple):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: float) -> None:  # type: ignore[override]
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._group_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise BpcliError(
                    f"the optimizer now has {len(groups)} param groups but min_lr "
                    f"lists {len(self.min_lrs)}",
                    self._name,
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def _is_better(self, a: float, best: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if rel else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if rel else best + self.threshold)
