"""The Lion optimizer and torch's PolynomialLR schedule, on bpcli's optimizer base classes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from bpcli.optim import Optimizer
from bpcli.optim.lr_scheduler import LRScheduler

__all__ = ["Lion", "PolynomialLR"]


class Lion(Optimizer):
    """Lion, "EvoLved Sign Momentum" (Chen et al. 2023, Algorithm 2).

    ``c = beta1 m + (1 - beta1) g``; ``p -= lr (sign(c) + weight_decay p)``;
    ``m = beta2 m + (1 - beta2) g``. Every coordinate moves by exactly ``lr``, so Lion wants
    a learning rate 3-10x smaller than AdamW's (and a weight decay that much larger).

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        betas: interpolation weights of the update and of the momentum, each in [0, 1].
        weight_decay: decoupled weight decay, ``p *= 1 - lr * weight_decay``.
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check(self, o: dict) -> None:
        self._nonneg(o, "lr", "weight_decay")
        betas = o.get("betas", (0.9, 0.99))
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise self._bad("betas", betas, "it must be a pair (beta1, beta2)")
        for i, b in enumerate(betas):
            if not (isinstance(b, int | float) and 0.0 <= b <= 1.0):
                raise self._bad(f"betas[{i}]", b, "it must be in [0, 1]")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p)
        m = state["exp_avg"]
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if wd != 0:
            p *= 1 - lr * wd
        p -= lr * np.sign(beta1 * m + (1 - beta1) * g)
        m *= beta2
        m += (1 - beta2) * g


class PolynomialLR(LRScheduler):
    """``torch.optim.lr_scheduler.PolynomialLR``: ``lr = base (1 - t / total_iters)^power``
    for ``t <= total_iters``, then unchanged (0 for ``power > 0``).

    Args:
        optimizer: the optimizer whose groups' ``lr`` this schedule sets.
        total_iters: steps over which the lr decays to 0.
        power: the polynomial's exponent (1.0 is linear decay).
        last_epoch: index of the last epoch; -1 starts a new schedule.
    """

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ):
        if not (isinstance(total_iters, int) and total_iters > 0):
            raise self._bad("total_iters", total_iters, "it must be a positive integer")
        if not (isinstance(power, int | float) and power >= 0):
            raise self._bad("power", power, "it must be a number >= 0")
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # The recursive form, as torch: the factor from step t-1 to step t.
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        t, n = self.last_epoch, self.total_iters
        factor = ((1.0 - t / n) / (1.0 - (t - 1) / n)) ** self.power
        return [lr * factor for lr in self._group_lrs()]

    def _closed_form(self) -> list[float]:
        t = min(self.total_iters, self.last_epoch)
        return [b * (1.0 - t / self.total_iters) ** self.power for b in self.base_lrs]
