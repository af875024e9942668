"""Adam, AdamW (decoupled weight decay) and NAdam, with torch's exact update order."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bpcli.optim.optimizer import Optimizer


def lerp_(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """``a += w * (b - a)`` in place, evaluated as torch's lerp (exact at w = 0 and w = 1)."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class _AdamBase(Optimizer):
    def _check(self, o: dict) -> None:
        self._nonneg(o, "lr", "eps", "weight_decay")
        betas = o.get("betas", (0.9, 0.999))
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise self._bad("betas", betas, "it must be a pair (beta1, beta2)")
        for i, b in enumerate(betas):
            if not (isinstance(b, int | float) and 0.0 <= b < 1.0):
                raise self._bad(f"betas[{i}]", b, "it must be in [0, 1)")

    def _moments(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict):
        """Count the step, apply weight decay, update both moments; returns the new g."""
        if "exp_avg" not in state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1.0
        lr, wd = group["lr"], group["weight_decay"]
        if wd != 0:
            if group.get("decoupled_weight_decay", False):
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        beta1, beta2 = group["betas"]
        lerp_(state["exp_avg"], g, 1 - beta1)
        sq = state["exp_avg_sq"]
        sq *= beta2
        sq += (1 - beta2) * g * g
        return g


class Adam(_AdamBase):
    """``torch.optim.Adam``; ``weight_decay`` is an L2 term added to the gradient unless
    ``decoupled_weight_decay`` (then it is AdamW).

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        betas: decay rates of the first and second moment averages, each in [0, 1).
        eps: added to the denominator.
        weight_decay: L2 penalty (or decoupled decay, see above).
        amsgrad: normalise by the running maximum of the second moment.
        maximize: ascend instead of descend.
        decoupled_weight_decay: ``p *= 1 - lr*weight_decay`` before the update (AdamW).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        self._moments(p, g, state, group)
        beta1, beta2 = group["betas"]
        step = state["step"]
        step_size = group["lr"] / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        v = state["exp_avg_sq"]
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(p)
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v)
        denom /= bias_correction2_sqrt
        denom += group["eps"]
        update = -step_size * state["exp_avg"]
        update /= denom
        p += update


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr*weight_decay``."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )


class NAdam(_AdamBase):
    """``torch.optim.NAdam``: Adam with Nesterov momentum and the momentum-decay schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``.

    NOTE: ``mu_product`` is a Python float (float64); torch keeps it in its default dtype, so
    with torch's float32 default the two differ by ~1e-7 relative in the step size.

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        betas: decay rates of the moment averages, each in [0, 1).
        eps: added to the denominator.
        weight_decay: L2 penalty (decoupled if ``decoupled_weight_decay``).
        momentum_decay: the ``psi`` of the momentum schedule.
        decoupled_weight_decay: ``p *= 1 - lr*weight_decay`` instead of L2.
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check(self, o: dict) -> None:
        super()._check(o)
        self._nonneg(o, "momentum_decay")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        if "mu_product" not in state:
            state["mu_product"] = 1.0
        g = self._moments(p, g, state, group)
        lr, (beta1, beta2), psi = group["lr"], group["betas"], group["momentum_decay"]
        step = state["step"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        denom = state["exp_avg_sq"] / (1 - beta2**step)
        np.sqrt(denom, out=denom)
        denom += group["eps"]
        update = (-lr * (1.0 - mu) / (1.0 - mu_product)) * g
        update /= denom
        p += update
        update = ((-lr * mu_next) / (1.0 - mu_product * mu_next)) * state["exp_avg"]
        update /= denom
        p += update
