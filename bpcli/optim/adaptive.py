"""RMSprop and Adagrad: per-coordinate step sizes from running squared gradients."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bpcli.optim.adam import lerp_
from bpcli.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: ``v = alpha*v + (1-alpha)*g^2; p -= lr * g / (sqrt(v) + eps)``.

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average, in [0, 1].
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor applied to the normalised gradient.
        centered: normalise by an estimate of the variance (subtracts the squared mean).
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check(self, o: dict) -> None:
        self._nonneg(o, "lr", "alpha", "eps", "weight_decay", "momentum")
        if o.get("alpha", 0.0) > 1.0:
            raise self._bad("alpha", o["alpha"], "it must be in [0, 1]")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if "square_avg" not in state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1.0
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * g * g
        if group["centered"]:
            ga = state.setdefault("grad_avg", np.zeros_like(p))
            lerp_(ga, g, 1 - alpha)
            avg = sq - ga * ga
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(sq)
        avg += group["eps"]
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p))
            buf *= momentum
            buf += g / avg
            p -= group["lr"] * buf
        else:
            update = -group["lr"] * g
            update /= avg
            p += update


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``: ``s += g^2; p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)``.

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        lr_decay: the learning rate is divided by ``1 + (t-1)*lr_decay`` at step t.
        weight_decay: L2 penalty added to the gradient.
        initial_accumulator_value: starting value of the sum of squared gradients.
        eps: added to the denominator.
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check(self, o: dict) -> None:
        self._nonneg(o, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        if "sum" not in state:
            state["step"] = 0.0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1.0
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = np.sqrt(state["sum"])
        std += group["eps"]
        update = -clr * g
        update /= std
        p += update
