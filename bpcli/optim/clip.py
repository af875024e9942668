"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


def _grads(params) -> list[np.ndarray]:
    if isinstance(params, Tensor):
        params = [params]
    return [p.grad for p in params if p.grad is not None]


def _norm(g: np.ndarray, p: float) -> float:
    if g.size == 0:
        return 0.0
    if p == math.inf:
        return float(np.max(np.abs(g)))
    if p == -math.inf:
        return float(np.min(np.abs(g)))
    if p == 0:
        return float(np.count_nonzero(g))
    flat = g.ravel()
    if p == 1:
        return float(np.sum(np.abs(flat)))
    if p == 2:
        return math.sqrt(float(np.dot(flat, flat)))
    return float(np.sum(np.abs(flat) ** p)) ** (1.0 / p)


def grad_norm(params: Iterable[Tensor] | Tensor, norm_type: float = 2.0) -> float:
    """The norm of all gradients taken together (as if concatenated into one vector)."""
    p = float(norm_type)
    norms = np.array([_norm(g, p) for g in _grads(params)], dtype=np.float64)
    return _norm(norms, p) if norms.size else 0.0


def clip_grad_norm_(
    params: Iterable[Tensor] | Tensor,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so their total norm is at most ``max_norm``.

    The scale is ``min(1, max_norm / (total_norm + 1e-6))``, as in torch.

    Args:
        params: tensors whose ``.grad`` to clip (those without a gradient are skipped).
        max_norm: the largest total norm allowed.
        norm_type: the p of the p-norm; ``inf`` for the largest absolute value.
        error_if_nonfinite: raise if the total norm is NaN or infinite.

    Returns:
        The total norm before clipping.
    """
    if not max_norm >= 0:
        raise BpcliError(f"max_norm={max_norm!r} is invalid: it must be >= 0", "clip_grad_norm_")
    grads = _grads(params)
    if not grads:
        return 0.0
    total = grad_norm(params, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise BpcliError(
            f"the total {norm_type}-norm of the gradients is {total}; gradients are not "
            "finite (pass error_if_nonfinite=False to clip anyway)",
            "clip_grad_norm_",
        )
    coef = float(max_norm) / (total + 1e-6)
    # NOTE: written so that a NaN coefficient also scales (poisons) the gradients, as in torch.
    if not coef >= 1.0:
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(params: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    c = float(clip_value)
    if not c >= 0:
        raise BpcliError(
            f"clip_value={clip_value!r} is invalid: it must be >= 0", "clip_grad_value_"
        )
    for g in _grads(params):
        np.clip(g, -c, c, out=g)
