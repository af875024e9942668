"""Factor schedules of torch: ConstantLR, and LambdaLR and MultiplicativeLR (user functions).

Same names, arguments, defaults and recursive formulas as ``torch.optim.lr_scheduler``, so
trajectories agree to the last bit. LambdaLR and MultiplicativeLR take Python functions, so a
spec cannot name them; build them in code.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from bpcli.errors import BpcliError
from bpcli.optim.optimizer import Optimizer, _plain
from bpcli.optim.schedules import LRScheduler


class ConstantLR(LRScheduler):
    """Multiply the lr by ``factor`` for the first ``total_iters`` epochs, then restore it."""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        # NOTE: torch accepts factor 0 but then divides by it at total_iters; so does LinearLR's
        # start_factor here, which must be in (0, 1] too.
        if not (isinstance(factor, int | float) and 0 < factor <= 1):
            raise self._bad("factor", factor, "it must be in (0, 1]")
        if not (isinstance(total_iters, int) and total_iters > 0):
            raise self._bad("total_iters", total_iters, "it must be a positive integer")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._group_lrs()]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [lr * (1.0 / self.factor) for lr in self._group_lrs()]

    def _closed_form(self) -> list[float]:
        after = self.last_epoch >= self.total_iters
        return [b * (self.factor + after * (1 - self.factor)) for b in self.base_lrs]


LrLambda = Callable[[int], float]


class _LambdaSchedule(LRScheduler):
    """Holds one ``lr_lambda`` per param group and saves what torch saves of them: nothing
    of a plain function, the ``__dict__`` of a callable object."""

    def __init__(
        self, optimizer: Optimizer, lr_lambda: LrLambda | list[LrLambda], last_epoch: int = -1
    ):
        if not isinstance(optimizer, Optimizer):
            raise BpcliError(f"{type(optimizer).__name__} is not an Optimizer", self._name)
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != n:
                raise BpcliError(
                    f"lr_lambda has {len(lr_lambda)} functions for {n} param groups", self._name
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        for i, fn in enumerate(self.lr_lambdas):
            if not callable(fn):
                raise self._bad(f"lr_lambda[{i}]", fn, "it must be a function of the epoch")
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        out = {
            k: _plain(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")
        }
        # NOTE: a function's code cannot be saved; rebuild the schedule with the same ones.
        out["lr_lambdas"] = [
            None if _is_function(fn) else {k: _plain(v) for k, v in vars(fn).items()}
            for fn in self.lr_lambdas
        ]
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("lr_lambdas", [])
        if len(saved) != len(self.lr_lambdas):
            raise BpcliError(
                f"the state dict has {len(saved)} lr_lambdas, this schedule has "
                f"{len(self.lr_lambdas)}",
                self._name,
            )
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, attrs in zip(self.lr_lambdas, saved, strict=True):
            if attrs is not None:
                vars(fn).update(attrs)


def _is_function(fn) -> bool:
    # As torch: the state of callable objects is saved, that of functions and lambdas is not.
    return isinstance(fn, types.FunctionType) or not hasattr(fn, "__dict__")


class LambdaLR(_LambdaSchedule):
    """``lr = initial_lr * lr_lambda(epoch)``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this schedule sets.
        lr_lambda: a function of the epoch giving the factor, or one function per group.
        last_epoch: index of the last epoch; -1 starts a new schedule.
    """

    def get_lr(self) -> list[float]:
        return [
            b * fn(self.last_epoch) for fn, b in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class MultiplicativeLR(_LambdaSchedule):
    """``lr *= lr_lambda(epoch)`` at every step after the first.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this schedule sets.
        lr_lambda: a function of the epoch giving the factor, or one function per group.
        last_epoch: index of the last epoch; -1 starts a new schedule.
    """

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [
            lr * fn(self.last_epoch)
            for fn, lr in zip(self.lr_lambdas, self._group_lrs(), strict=True)
        ]
