"""CyclicLR: torch's cyclical learning rates (Smith 2017), momentum cycling the other way."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

from bpcli.errors import BpcliError
from bpcli.optim.optimizer import Optimizer, _plain
from bpcli.optim.schedules import LRScheduler

MODES = ("triangular", "triangular2", "exp_range")


class CyclicLR(LRScheduler):
    """Cycle the lr between ``base_lr`` and ``max_lr`` (``torch.optim.lr_scheduler.CyclicLR``):
    up over ``step_size_up`` steps, down over ``step_size_down``; step it once per batch.

    The amplitude ``max_lr - base_lr`` is scaled by ``scale_fn`` of the cycle number
    (``scale_mode="cycle"``) or of the step count (``"iterations"``): 1 for ``triangular``,
    ``1 / 2^(cycle-1)`` for ``triangular2``, ``gamma^step`` for ``exp_range``. With
    ``cycle_momentum``, momentum (or Adam's beta1) goes from ``max_momentum`` at ``base_lr``
    to ``base_momentum`` at ``max_lr``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this schedule sets; its ``lr`` is replaced
            by ``base_lr``.
        base_lr: the lower lr, one number or one per param group.
        max_lr: the upper lr, one number or one per param group.
        step_size_up: steps from ``base_lr`` up to ``max_lr``.
        step_size_down: steps back down; ``None`` means ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``; ignored with ``scale_fn``.
        gamma: the base of ``exp_range``'s scaling.
        scale_fn: a function ``x -> [0, 1]`` replacing the mode's scaling (code only).
        scale_mode: ``"cycle"`` or ``"iterations"``, what ``scale_fn`` is a function of.
        cycle_momentum: cycle the momentum (or beta1) inversely to the lr.
        base_momentum: the momentum at ``max_lr``, one number or one per param group.
        max_momentum: the momentum at ``base_lr``, one number or one per param group.
        last_epoch: the number of the last batch; -1 starts a new schedule.
    """

    # A spec's [schedule] with type = "cyclic" steps per batch unless it sets interval.
    default_interval = "step"

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise BpcliError(f"{type(optimizer).__name__} is not an Optimizer", self._name)
        self.optimizer = optimizer
        base_lrs = self._per_group("base_lr", base_lr)
        self.max_lrs = self._per_group("max_lr", max_lr)
        self._sizes(step_size_up, step_size_down)
        if scale_fn is None and mode not in MODES:
            raise self._bad("mode", mode, f"use one of {', '.join(MODES)} (or give a scale_fn)")
        if scale_fn is not None and not callable(scale_fn):
            raise self._bad("scale_fn", scale_fn, "it must be a function")
        if scale_mode not in ("cycle", "iterations"):
            raise self._bad("scale_mode", scale_mode, "use 'cycle' or 'iterations'")
        if not _number(gamma):
            raise self._bad("gamma", gamma, "it must be a number")
        self.mode, self.gamma, self._scale_fn_custom = mode, gamma, scale_fn
        self.scale_mode = scale_mode
        if scale_fn is None:  # the modes fix what they scale by, as torch does
            self.scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(base_momentum, max_momentum, last_epoch)
        if last_epoch == -1:  # only now: a bad option leaves the optimizer as it was
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = lr
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _per_group(self, name: str, value) -> list[float]:
        n = len(self.optimizer.param_groups)
        values = list(value) if isinstance(value, list | tuple) else [value] * n
        if len(values) != n:
            raise BpcliError(f"{name} has {len(values)} values for {n} param groups", self._name)
        for v in values:
            if not _number(v):
                raise self._bad(name, value, "give a number or one number per param group")
        return values

    def _sizes(self, up, down) -> None:
        if not _int(up, 1):
            raise self._bad("step_size_up", up, "it must be a positive integer")
        if down is not None and not _int(down, 0):
            raise self._bad("step_size_down", down, "it must be an integer >= 0 (or None)")
        up_f = float(up)
        down_f = float(down) if down is not None else up_f
        self.total_size = up_f + down_f
        self.step_ratio = up_f / self.total_size

    def _init_momentum(self, base_momentum, max_momentum, last_epoch: int) -> None:
        opt = self.optimizer
        if "momentum" not in opt.defaults and "betas" not in opt.defaults:
            raise self._bad(
                "cycle_momentum", True, f"{type(opt).__name__} has neither momentum nor betas"
            )
        self.use_beta1 = "betas" in opt.defaults
        self.base_momentums = self._per_group("base_momentum", base_momentum)
        self.max_momentums = self._per_group("max_momentum", max_momentum)
        if last_epoch == -1:
            for m, b, group in zip(
                self.max_momentums, self.base_momentums, opt.param_groups, strict=True
            ):
                self._set_momentum(group, m)
                group["max_momentum"], group["base_momentum"] = m, b

    def _set_momentum(self, group: dict, m: float) -> None:
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        # The same operations in the same order as torch, so the values agree to the bit.
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            factor = x / self.step_ratio
        else:
            factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [
            b + (m - b) * factor * scale for b, m in zip(self.base_lrs, self.max_lrs, strict=True)
        ]
        if self.cycle_momentum:
            groups = self.optimizer.param_groups
            for b, m, group in zip(self.base_momentums, self.max_momentums, groups, strict=True):
                self._set_momentum(group, m - (m - b) * factor * scale)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        out = {
            k: _plain(v)
            for k, v in self.__dict__.items()
            if k not in ("optimizer", "_scale_fn_custom")
        }
        # NOTE: as torch: a function's code cannot be saved, a callable object's state can.
        fn = self._scale_fn_custom
        keep = fn is not None and not isinstance(fn, types.FunctionType) and hasattr(fn, "__dict__")
        out["_scale_fn_custom"] = {k: _plain(v) for k, v in vars(fn).items()} if keep else None
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        attrs = state_dict.get("_scale_fn_custom")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_scale_fn_custom"})
        if attrs is not None and self._scale_fn_custom is not None:
            vars(self._scale_fn_custom).update(attrs)


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(v, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low
