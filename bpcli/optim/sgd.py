"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bpcli.optim.optimizer import Optimizer


class SGD(Optimizer):
    """``torch.optim.SGD``: ``g += wd*p; b = m*b + (1-dampening)*g; p -= lr*(g + m*b or b)``.

    The first step sets ``b = g`` (no dampening), as torch does.

    Args:
        params: tensors or param-group dicts.
        lr: learning rate.
        momentum: momentum factor (0 turns momentum off).
        dampening: dampening of the gradient in the momentum buffer.
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening == 0).
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check(self, o: dict) -> None:
        self._nonneg(o, "lr", "momentum", "weight_decay")
        if not isinstance(o.get("dampening", 0.0), int | float):
            raise self._bad("dampening", o["dampening"], "it must be a number")
        if o.get("nesterov") and (o.get("momentum", 0) <= 0 or o.get("dampening", 0) != 0):
            raise self._bad(
                "nesterov",
                True,
                "Nesterov momentum needs momentum > 0 and "
                f"dampening = 0 (momentum={o.get('momentum')!r}, "
                f"dampening={o.get('dampening')!r})",
            )

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        wd, momentum = group["weight_decay"], group["momentum"]
        if wd != 0:
            g = g + wd * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                dampening = group["dampening"]
                buf += (1 - dampening) * g if dampening != 0 else g  # one temporary fewer
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g
