"""Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_t)^gamma, for easy examples
to weigh less. Composites of existing ops, so the engine differentiates them."""

from __future__ import annotations

from collections.abc import Sequence

import bpcli as bp
import numpy as np
from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn import Module

__all__ = ["FocalLoss", "focal_loss", "sigmoid_focal_loss"]

REDUCTIONS = ("none", "mean", "sum")


def _tensor(x) -> bp.Tensor:
    return x if isinstance(x, bp.Tensor) else bp.tensor(x)


def _array(x) -> np.ndarray:
    return x.data if isinstance(x, bp.Tensor) else np.asarray(x)


def _check(gamma, reduction: str, where: str) -> None:
    if reduction not in REDUCTIONS:
        raise BpcliError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}",
                         where)  # fmt: skip
    if not (isinstance(gamma, int | float) and gamma >= 0):
        raise BpcliError(f"gamma must be a number >= 0, got {gamma!r}", where)


def _reduce(loss: bp.Tensor, reduction: str) -> bp.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def sigmoid_focal_loss(
    input, target, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none",  # noqa: A002
) -> bp.Tensor:  # fmt: skip
    """Binary focal loss on logits, as ``torchvision.ops.sigmoid_focal_loss``.

    ``loss = a_t (1 - p_t)^gamma BCE(x, y)`` with ``p = sigmoid(x)``,
    ``p_t = p y + (1 - p)(1 - y)`` and ``a_t = alpha y + (1 - alpha)(1 - y)``.

    Args:
        input: logits, any shape.
        target: 0/1 (or soft) targets of the same shape.
        alpha: weight of the positive class in [0, 1]; None (or < 0) weighs both alike.
        gamma: focusing exponent >= 0 (0 gives plain BCE).
        reduction: ``"none"`` (torchvision's default), ``"mean"`` or ``"sum"``.
    """
    _check(gamma, reduction, "sigmoid_focal_loss")
    x = _tensor(input)
    if x.dtype.kind != "f":
        raise BpcliError(f"input must be float logits, got {x.dtype}", "sigmoid_focal_loss")
    y = _array(target)
    if y.shape != x.shape:
        raise BpcliError(f"target shape {y.shape} differs from input shape {x.shape}",
                         "sigmoid_focal_loss")  # fmt: skip
    y = bp.tensor(y.astype(x.dtype, copy=False))
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p = F.sigmoid(x)
    # NOTE: gamma = 0 skips the power: its derivative 0 * 0^-1 would be NaN where p_t = 1.
    loss = ce * (p + y - 2 * p * y) ** gamma if gamma else ce  # (1 - p_t)^gamma
    if alpha is not None and not isinstance(alpha, int | float):
        raise BpcliError(f"alpha must be a number or None, got {alpha!r}", "sigmoid_focal_loss")
    if alpha is not None and alpha >= 0:
        if alpha > 1:
            raise BpcliError(f"alpha must be in [0, 1] or None, got {alpha}", "sigmoid_focal_loss")
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return _reduce(loss, reduction)


def focal_loss(
    input, target, gamma: float = 2.0, alpha: float | Sequence[float] | None = None,  # noqa: A002
    reduction: str = "mean",
) -> bp.Tensor:  # fmt: skip
    """Multi-class focal loss on logits: ``-a_t (1 - p_t)^gamma log p_t``, ``p = softmax``.

    Args:
        input: logits ``(N, C)`` or ``(N, C, d1, ...)``, classes on axis 1 (as cross_entropy).
        target: int class indices ``(N,)`` or ``(N, d1, ...)``.
        gamma: focusing exponent >= 0 (0 gives cross-entropy).
        alpha: None, a number scaling every term, or one weight per class.
        reduction: ``"none"``, ``"mean"`` (over all terms, as the paper) or ``"sum"``.
    """
    _check(gamma, reduction, "focal_loss")
    x = _tensor(input)
    t = _array(target)
    if x.dtype.kind != "f" or x.ndim < 2:
        raise BpcliError(f"input must be float logits of shape (N, C, ...), got {x.dtype} "
                         f"{x.shape}", "focal_loss")  # fmt: skip
    n_classes = x.shape[1]
    if t.dtype.kind not in "iu" or t.shape != (x.shape[0], *x.shape[2:]):
        raise BpcliError(f"target must be int class indices of shape "
                         f"{(x.shape[0], *x.shape[2:])} for input {x.shape}, got {t.dtype} "
                         f"{t.shape}", "focal_loss")  # fmt: skip
    bad = (t < 0) | (t >= n_classes)
    if bad.any():
        raise BpcliError(f"target {int(t[bad].flat[0])} is out of range 0..{n_classes - 1}",
                         "focal_loss")  # fmt: skip
    classes = np.arange(n_classes).reshape((1, n_classes) + (1,) * (x.ndim - 2))
    onehot = bp.tensor((classes == np.expand_dims(t, 1)).astype(x.dtype))
    logpt = (F.log_softmax(x, axis=1) * onehot).sum(axis=1)
    loss = -((1 - logpt.exp()) ** gamma) * logpt if gamma else -logpt
    if alpha is not None:
        if isinstance(alpha, int | float):
            loss = loss * float(alpha)
        else:
            a = np.asarray(alpha, dtype=x.dtype)
            if a.shape != (n_classes,):
                raise BpcliError(f"alpha needs one weight per class ({n_classes}), got shape "
                                 f"{a.shape}", "focal_loss")  # fmt: skip
            loss = loss * bp.tensor(a[t])
    return _reduce(loss, reduction)


class FocalLoss(Module):
    """Focal loss as a layer: multi-class for int targets with one axis fewer than the logits
    (what the trainer passes for classification), binary (sigmoid) for float 0/1 targets
    of the logits' shape.

    Args:
        gamma: focusing exponent >= 0.
        alpha: multi-class: None, a number or one weight per class; binary: positive-class
            weight in [0, 1] or None.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, gamma: float = 2.0, alpha=None, reduction: str = "mean"):
        super().__init__()
        _check(gamma, reduction, "FocalLoss")
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def forward(self, input, target):  # noqa: A002
        t = _array(target)
        if t.dtype.kind in "iu" and t.ndim == np.ndim(_array(input)) - 1:
            return focal_loss(input, target, self.gamma, self.alpha, self.reduction)
        return sigmoid_focal_loss(input, target, self.alpha, self.gamma, self.reduction)
