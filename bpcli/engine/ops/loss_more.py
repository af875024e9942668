"""More losses and distances, as ``torch.nn.functional``: binary_cross_entropy (on
probabilities), cosine_similarity, pairwise_distance, and the margin/embedding losses.

binary_cross_entropy is a primitive so that its logs are clamped at -100 and its gradient is
torch's (x - y) / max(x (1 - x), 1e-12), finite at x = 0 and 1. The rest are composites
written in the order torch's ATen code computes them, so the numbers agree to rounding.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift, pair
from bpcli.engine.op import Op
from bpcli.engine.ops import activation as act
from bpcli.engine.ops import elementwise as ew
from bpcli.engine.ops import reduce as rd
from bpcli.engine.ops.activation_more import logsigmoid
from bpcli.engine.ops.index import gather
from bpcli.engine.ops.loss import _check_reduction, _reduce
from bpcli.engine.ops.math import log1p
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "binary_cross_entropy",
    "cosine_embedding_loss",
    "cosine_similarity",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
    "pairwise_distance",
    "soft_margin_loss",
    "triplet_margin_loss",
]  # fmt: skip


class BinaryCrossEntropy(Op):
    """l = -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100));
    dx = g w (x - y) / max(x (1 - x), 1e-12), dy = g w (log(1 - x) - log x)"""

    name, onnx = "binary_cross_entropy", None  # exported through Log, Max and Mul

    def forward(self, x, y, w=None, *, reduction):
        if x.size and ((x < 0) | (x > 1)).any():  # nan also fails the check below
            raise BpcliError("all elements of input should be between 0 and 1", self.name)
        if np.isnan(x).any():
            raise BpcliError("all elements of input should be between 0 and 1", self.name)
        t = x.dtype.type
        with np.errstate(divide="ignore"):
            self.lx = np.maximum(np.log(x), t(-100))
            self.l1x = np.maximum(np.log1p(-x), t(-100))
        self.x, self.y = x, y
        self.w = np.ones((), x.dtype) if w is None else w
        loss = -self.w * (y * self.lx + (1 - y) * self.l1x)
        self.n = loss.size
        if reduction == "none":
            return loss
        total = np.sum(loss, dtype=x.dtype)
        with np.errstate(invalid="ignore"):  # the mean of nothing is nan, as torch's
            return np.asarray(total if reduction == "sum" else total / t(self.n), x.dtype)

    def backward(self, g):
        if self.attrs["reduction"] == "mean":
            g = g / g.dtype.type(self.n)
        x, y, gw = self.x, self.y, g * self.w
        dx = dy = None
        if self.needs[0]:
            # NOTE: torch's EPSILON is the float32 1e-12, in float64 too
            dx = gw * (x - y) / np.maximum(x * (1 - x), x.dtype.type(np.float32(1e-12)))
        if self.needs[1]:
            # NOTE: unclamped logs, as torch's: +-inf for x at 0 or 1
            with np.errstate(divide="ignore"):
                dy = gw * (np.log1p(-x) - np.log(x))
        # torch does not differentiate the weight either
        return (dx, dy) + ((None,) if len(self.needs) > 2 else ())


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.binary_cross_entropy of probabilities ``input`` in [0, 1]."""
    if size_average is not None or reduce is not None:
        raise BpcliError("size_average/reduce are deprecated in torch: use reduction=",
                         "binary_cross_entropy")  # fmt: skip
    _check_reduction(reduction, "binary_cross_entropy")
    x, y = pair(input, target)
    if x.dtype.kind != "f" or y.dtype != x.dtype:
        raise BpcliError(f"needs float input and target of one dtype, got {x.dtype} and "
                         f"{y.dtype}", "binary_cross_entropy")  # fmt: skip
    if x.shape != y.shape:
        raise BpcliError(f"target size {y.shape} must be the input size {x.shape}",
                         "binary_cross_entropy")  # fmt: skip
    ins = [x, y]
    if weight is not None:
        w = lift(weight, x)
        try:
            np.broadcast_shapes(w.shape, x.shape)
        except ValueError:
            raise BpcliError(f"weight {w.shape} does not broadcast to the input {x.shape}",
                             "binary_cross_entropy") from None  # fmt: skip
        if len(np.broadcast_shapes(w.shape, x.shape)) != x.ndim or w.dtype != x.dtype:
            raise BpcliError(f"weight {w.shape} {w.dtype} must broadcast to the input "
                             f"{x.shape} {x.dtype}", "binary_cross_entropy")  # fmt: skip
        ins.append(const(w.data))
    return BinaryCrossEntropy.apply(*ins, reduction=reduction)


class ClampMinPassthrough(Op):
    """y = max(x, eps); dx = g everywhere (the clamp is invisible to the gradient)"""

    # torch clamps cosine_similarity's norms in place under no_grad: the value is clamped,
    # the gradient is the unclamped norm's. Exported as Max(x, eps).
    name, onnx, saves_inputs = "clamp_min_passthrough", None, False

    def forward(self, x, eps):
        return np.maximum(x, x.dtype.type(eps))

    def backward(self, g):
        return g


def _detached_floor(n: Tensor, eps: float) -> Tensor:
    return ClampMinPassthrough.apply(n, eps=float(eps))


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """torch.nn.functional.cosine_similarity: sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps))."""
    a, b = pair(x1, x2)
    if a.dtype.kind != "f":
        a, b = ew.astype(a, np.float32), ew.astype(b, np.float32)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise BpcliError(f"x1 {a.shape} and x2 {b.shape} do not broadcast",
                         "cosine_similarity") from None  # fmt: skip
    if not -max(len(shape), 1) <= dim < max(len(shape), 1):
        raise BpcliError(f"dim {dim} is out of range for shape {shape}", "cosine_similarity")
    a, b = a.expand(shape) if a.shape != shape else a, b.expand(shape) if b.shape != shape else b
    na = _detached_floor(rd.norm(a, 2, dim=dim, keepdim=True), eps)
    nb = _detached_floor(rd.norm(b, 2, dim=dim, keepdim=True), eps)
    return rd.sum((a / na) * (b / nb), dim=dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """torch.nn.functional.pairwise_distance: ||x1 - x2 + eps||_p over the last dim."""
    a, b = pair(x1, x2)
    last = max(a.ndim, b.ndim) - 1
    if last < 0:
        raise BpcliError("needs tensors of at least 1 dim", "pairwise_distance")
    return rd.norm(a - b + eps, p, dim=last, keepdim=keepdim)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.triplet_margin_loss: max(margin + d(a, p) - d(a, n), 0)."""
    _check_reduction(reduction, "triplet_margin_loss")
    a, pos, neg = lift(anchor), lift(positive), lift(negative)
    if not (a.ndim == pos.ndim == neg.ndim) or a.ndim not in (1, 2):
        raise BpcliError(f"anchor, positive and negative must all be 1-d or 2-d, got shapes "
                         f"{a.shape}, {pos.shape}, {neg.shape}", "triplet_margin_loss")  # fmt: skip
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = ew.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _reduce(act.clip(d_pos - d_neg + float(margin), min=0.0), reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.margin_ranking_loss: max(0, -y (x1 - x2) + margin)."""
    _check_reduction(reduction, "margin_ranking_loss")
    a, b = pair(input1, input2)
    y = lift(target, a)
    return _reduce(act.clip(-y * (a - b) + float(margin), min=0.0), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.hinge_embedding_loss: x where y = 1, max(0, margin - x) where
    y = -1 (any other y counts in both terms, as torch's)."""
    _check_reduction(reduction, "hinge_embedding_loss")
    x, y = pair(input, target)
    m = act.clip(float(margin) - x, min=0.0)
    out = ew.where(ew.ne(y, 1.0), m, 0.0) + ew.where(ew.ne(y, -1.0), x, 0.0)
    return _reduce(out, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.soft_margin_loss: log(1 + exp(-y x))."""
    _check_reduction(reduction, "soft_margin_loss")
    x, y = pair(input, target)
    return _reduce(log1p(ew.exp(-x * y)), reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean"):  # fmt: skip
    """torch.nn.functional.multi_margin_loss: sum over j != y of
    max(0, margin - x_y + x_j)^p (times weight[y]) / C."""
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise BpcliError(f"only p == 1 and p == 2 are supported, got {p}", "multi_margin_loss")
    x, t = lift(input), lift(target)
    if x.ndim not in (1, 2) or x.dtype.kind != "f":
        raise BpcliError(f"input must be a (C,) or (N, C) float tensor, got {x.shape} {x.dtype}",
                         "multi_margin_loss")  # fmt: skip
    x2 = x if x.ndim == 2 else x.reshape(1, -1)
    n, c = x2.shape
    ti = np.asarray(t.data).reshape(-1)
    if t.dtype.kind not in "iu" or ti.size != n:
        raise BpcliError(f"target must hold {n} class indices, got {t.shape} {t.dtype}",
                         "multi_margin_loss")  # fmt: skip
    if ((ti < 0) | (ti >= c)).any():
        raise BpcliError(f"target {int(ti[(ti < 0) | (ti >= c)][0])} is out of range for {c} "
                         "classes", "multi_margin_loss")  # fmt: skip
    xy = gather(x2, 1, ti.reshape(-1, 1).astype(np.int64))
    # strict z > 0 as torch's kernel (relu's mask), the target's own column left out
    z = ew.relu(x2 - xy + float(margin))
    z = z * z if p == 2 else z
    others = np.ones((n, c), x.dtype)
    others[np.arange(n), ti] = 0
    z = z * const(others)
    if weight is not None:
        w = np.asarray(lift(weight, x).data)
        if w.shape != (c,):
            raise BpcliError(f"weight must have shape ({c},), got {w.shape}", "multi_margin_loss")
        z = z * const(w[ti].reshape(-1, 1).astype(x.dtype))
    loss = rd.sum(z, dim=1) / float(c)
    if x.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.multilabel_soft_margin_loss: the mean over classes of
    -(y logsigmoid(x) + (1 - y) logsigmoid(-x)) (times weight)."""
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    x, y = pair(input, target)
    if x.ndim == 0:
        raise BpcliError("input needs a class dimension", "multilabel_soft_margin_loss")
    loss = -(y * logsigmoid(x) + (1.0 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * lift(weight, x)
    loss = rd.sum(loss, dim=x.ndim - 1) / float(x.shape[-1])
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """torch.nn.functional.cosine_embedding_loss: 1 - cos(x1, x2) where y = 1,
    max(0, cos(x1, x2) - margin) where y = -1."""
    _check_reduction(reduction, "cosine_embedding_loss")
    a, b = pair(input1, input2)
    y = lift(target)
    if a.ndim not in (1, 2) or a.shape != b.shape:
        raise BpcliError(f"inputs must be 1-d or 2-d of one shape, got {a.shape} and {b.shape}",
                         "cosine_embedding_loss")  # fmt: skip
    d = a.ndim - 1
    eps = 1e-12  # torch's EPSILON in cosine_embedding_loss
    prod = rd.sum(a * b, dim=d)
    mag = ew.sqrt((rd.sum(a * a, dim=d) + eps) * (rd.sum(b * b, dim=d) + eps))
    cos = prod / mag
    out = ew.where(ew.eq(y, 1), 1.0 - cos, 0.0) + ew.where(
        ew.eq(y, -1), act.clip(cos - float(margin), min=0.0), 0.0
    )
    return _reduce(out, reduction)
