"""Loss functions, as ``torch.nn.functional``: names, arguments, defaults and semantics.

``cross_entropy`` with class-index targets and ``nll_loss`` are primitives (the first runs the
fused Numba kernel ``softmax_xent_fwd_bwd``); the others are composites of elementwise ops.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift, pair
from bpcli.engine.op import Op
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.ops import reduce as rd
from bpcli.engine.ops.nn import log_softmax
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.softmax import softmax_xent_fwd_bwd

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]  # fmt: skip

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, opname: str, allowed=REDUCTIONS) -> None:
    if reduction not in allowed:
        raise BpcliError(f"reduction must be one of {allowed}, got {reduction!r}", opname)


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N*d1*..., C) with classes last; (C,) -> (1, C)."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _unrows(d: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) <= 2:
        return d.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])
    return np.moveaxis(d.reshape(moved), -1, 1)


def _reduce_rows(loss, wt, reduction, target_shape, dtype):
    """Per-row losses -> the reduced loss, and the factor its gradient carries per row."""
    if reduction == "none":
        return loss.reshape(target_shape), None
    total = loss.sum(dtype=dtype)
    if reduction == "sum":
        return np.asarray(total, dtype=dtype), dtype.type(1)
    denom = wt.sum(dtype=dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        # NOTE: every target ignored: the loss is 0/0 = nan and the gradient 0, as torch's.
        factor = dtype.type(1) / denom if denom != 0 else dtype.type(0)
        return np.asarray(total / denom, dtype=dtype), factor


def _grad_rows(d, g, factor):
    """Scale per-row gradients d (M, C) by the upstream g (scalar or per row)."""
    if factor is None:
        return d * g.reshape(-1, 1)
    return d * (g * factor)


class CrossEntropy(Op):
    """loss_i = -sum_c q_ic log softmax(x_i)_c, q = (1-s) w_t onehot(t) + s w / C;
    dx_i = softmax(x_i) sum(q_i) - q_i (times the reduction's factor)"""

    name, onnx, saves_inputs = "cross_entropy", "SoftmaxCrossEntropyLoss", False

    def forward(self, x, target, weight=None, *, ignore_index, reduction, label_smoothing):
        c = x.shape[1] if x.ndim > 1 else x.shape[0]
        w = np.ones(c, dtype=x.dtype) if weight is None else np.ascontiguousarray(weight)
        t = np.ascontiguousarray(target, dtype=np.int64).reshape(-1)
        loss, self.d, wt = softmax_xent_fwd_bwd(_rows(x), t, w, ignore_index, label_smoothing)
        self.shape = x.shape
        out, self.factor = _reduce_rows(loss, wt, reduction, target.shape, x.dtype)
        return out

    def backward(self, g):
        dx = _unrows(_grad_rows(self.d, g, self.factor), self.shape) if self.needs[0] else None
        return (dx, None) + ((None,) if len(self.needs) > 2 else ())


class NllLoss(Op):
    """loss_i = -w_t x_it (0 where t = ignore_index); dx_it = -w_t g_i (times the factor)"""

    name, onnx = "nll_loss", "NegativeLogLikelihoodLoss"

    def forward(self, x, target, weight=None, *, ignore_index, reduction):
        x2 = _rows(x)
        t = np.asarray(target, dtype=np.int64).reshape(-1)
        valid = t != ignore_index
        self.t = np.where(valid, t, 0)
        self.rows = np.arange(t.size)
        w = np.ones(x2.shape[1], x.dtype) if weight is None else weight
        self.wt = np.where(valid, w[self.t], x.dtype.type(0)).astype(x.dtype, copy=False)
        loss = -self.wt * x2[self.rows, self.t]
        self.shape = x.shape
        out, self.factor = _reduce_rows(loss, self.wt, reduction, target.shape, x.dtype)
        return out

    def backward(self, g):
        if not self.needs[0]:
            return (None,) * len(self.needs)
        coef = -self.wt * (g.reshape(-1) if self.factor is None else g * self.factor)
        d = np.zeros((self.t.size, self.shape[1] if len(self.shape) > 1 else self.shape[0]),
                     dtype=coef.dtype)  # fmt: skip
        d[self.rows, self.t] = coef
        return (_unrows(d, self.shape), None) + ((None,) if len(self.needs) > 2 else ())


def _class_target_args(x: Tensor, target: Tensor, weight, opname: str):
    """Validate (N, C, d...) input against (N, d...) integer targets; weight as a tensor."""
    if x.ndim == 0:
        raise BpcliError("input must have a class dimension, got a 0-d tensor", opname)
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    want = (x.shape[0], *x.shape[2:]) if x.ndim > 1 else ()
    if target.shape != want:
        raise BpcliError(
            f"input of shape {x.shape} needs a target of shape {want}, got {target.shape}",
            opname,
        )
    ins = [x, target]
    if weight is not None:
        weight = lift(weight, x)
        if weight.shape != (c,):
            raise BpcliError(f"weight must have shape ({c},), got {weight.shape}", opname)
        if weight.dtype != x.dtype:
            raise BpcliError(f"weight dtype {weight.dtype} != input dtype {x.dtype}", opname)
        ins.append(weight)
    return ins, c


def _check_targets(t: np.ndarray, c: int, ignore_index: int, opname: str) -> None:
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        raise BpcliError(
            f"target {int(t[bad].flat[0])} is out of range for {c} classes "
            f"(ignore_index={ignore_index})",
            opname,
        )


def cross_entropy(
    input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:  # fmt: skip
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against class indices
    (N, d1, ...) or class probabilities (same shape as ``input``), as torch's."""
    x, target = lift(input), lift(target)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise BpcliError(
            f"label_smoothing must be in [0, 1], got {label_smoothing}", "cross_entropy"
        )
    if x.dtype.kind != "f":
        raise BpcliError(f"input must be float logits, got {x.dtype}", "cross_entropy")
    if target.dtype.kind == "f":
        return _cross_entropy_probs(x, target, weight, reduction, float(label_smoothing))
    if target.dtype.kind not in "iu":
        raise BpcliError(f"target must be class indices or probabilities, got {target.dtype}",
                         "cross_entropy")  # fmt: skip
    ins, c = _class_target_args(x, target, weight, "cross_entropy")
    _check_targets(target.data, c, ignore_index, "cross_entropy")
    return CrossEntropy.apply(*ins, ignore_index=int(ignore_index), reduction=reduction,
                              label_smoothing=float(label_smoothing))  # fmt: skip


def _cross_entropy_probs(x: Tensor, target: Tensor, weight, reduction: str, smoothing: float):
    if target.shape != x.shape:
        raise BpcliError(
            f"probability targets must have the input's shape {x.shape}, got {target.shape}",
            "cross_entropy",
        )
    axis = 1 if x.ndim > 1 else 0
    c = x.shape[axis]
    if smoothing > 0.0:
        target = target * (1.0 - smoothing) + smoothing / c
    terms = log_softmax(x, axis=axis) * target
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
        if w.shape != (c,) or w.dtype != x.dtype:
            raise BpcliError(
                f"weight must have shape ({c},) and dtype {x.dtype}, got {w.shape} {w.dtype}",
                "cross_entropy",
            )
        # As torch, the class weights get no gradient.
        terms = terms * const(w.reshape((c,) + (1,) * (x.ndim - axis - 1)))
    return _reduce(-rd.sum(terms, axis=axis), reduction)


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class ``target``."""
    x, target = lift(input), lift(target)
    _check_reduction(reduction, "nll_loss")
    if target.dtype.kind not in "iu":
        raise BpcliError(f"target must be class indices, got {target.dtype}", "nll_loss")
    ins, c = _class_target_args(x, target, weight, "nll_loss")
    _check_targets(target.data, c, ignore_index, "nll_loss")
    return NllLoss.apply(*ins, ignore_index=int(ignore_index), reduction=reduction)


# -- composites -----------------------------------------------------------------------------


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return rd.mean(loss)
    if reduction == "sum":
        return rd.sum(loss)
    return loss


def _pair_loss(input, target, reduction: str, opname: str):
    _check_reduction(reduction, opname)
    x, y = pair(input, target)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise BpcliError(f"input {x.shape} and target {y.shape} do not broadcast", opname) from None
    return x, y


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, reduced."""
    x, y = _pair_loss(input, target, reduction, "mse_loss")
    d = x - y
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|``, reduced."""
    x, y = _pair_loss(input, target, reduction, "l1_loss")
    return _reduce(ew.abs(x - y), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), with d = input - target."""
    x, y = _pair_loss(input, target, reduction, "huber_loss")
    if delta <= 0:
        raise BpcliError(f"delta must be positive, got {delta}", "huber_loss")
    d = x - y
    a = ew.abs(d)
    small = const(a.data < delta)
    return _reduce(ew.where(small, 0.5 * d * d, delta * (a - 0.5 * delta)), reduction)


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction: str = "mean", pos_weight=None,
) -> Tensor:  # fmt: skip
    """-[pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] * weight, computed stably."""
    x, y = _pair_loss(input, target, reduction, "binary_cross_entropy_with_logits")
    # softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)) never overflows.
    sp = ew.maximum(-x, 0.0) + ew.log(1.0 + ew.exp(-ew.abs(x)))
    if pos_weight is not None:
        loss = (1.0 - y) * x + ((lift(pos_weight, x) - 1.0) * y + 1.0) * sp
    else:
        loss = (1.0 - y) * x + sp
    if weight is not None:
        loss = loss * lift(weight, x)
    return _reduce(loss, reduction)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL ``target * (log target - input)`` with ``input`` given as log-probabilities;
    ``reduction='batchmean'`` divides the sum by the batch size."""
    _check_reduction(reduction, "kl_div", (*REDUCTIONS, "batchmean"))
    x, t = _pair_loss(input, target, "none", "kl_div")
    if log_target:
        loss = ew.exp(t) * (t - x)
    else:
        pos = const(t.data > 0)
        # xlogy(t, t): 0 where t == 0 (the limit), never log(0).
        loss = ew.where(pos, t * ew.log(ew.where(pos, t, 1.0)), 0.0) - t * x
    if reduction == "batchmean":
        n = x.shape[0] if x.ndim else 1
        return rd.sum(loss) / float(n)
    return _reduce(loss, reduction)
