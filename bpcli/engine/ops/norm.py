"""Normalisation: batch, layer and group norm, each one primitive over a fused Numba kernel.

A missing weight/bias becomes a constant ones/zeros vector, so every op has the same inputs and
exports to ONNX with real Scale/B initialisers; it gets no gradient (it does not require one).
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels import norm as K

__all__ = ["batch_norm", "group_norm", "layer_norm"]


def _ncl(x: np.ndarray) -> np.ndarray:
    """(N, C, *) as a C-contiguous (N, C, L) array (a view when it can be)."""
    length = math.prod(x.shape[2:])
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], length)


class BatchNorm(Op):
    """y = (x - mu) * w / sqrt(var + eps) + b, (mu, var) batch stats if training else running;
    dx = w * inv * (g - mean(g) - xh * mean(g * xh)) if training else g * w * inv"""

    name, onnx = "batch_norm", "BatchNormalization"

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps, update):
        self.shape = x.shape
        self.x = x3 = _ncl(x)
        self.weight = weight
        y, self.mean, var, self.inv = K.batchnorm_fwd(
            x3, weight, bias, running_mean, running_var, eps, training
        )
        if training and update:
            m = x3.shape[0] * x3.shape[2]
            # torch's convention: running = (1 - momentum) * running + momentum * batch stat,
            # with the unbiased variance (the normalisation itself uses the biased one).
            running_mean *= 1 - momentum
            running_mean += momentum * self.mean
            running_var *= 1 - momentum
            running_var += (momentum * m / (m - 1)) * var
        return y.reshape(x.shape)

    def backward(self, g):
        training = self.attrs["training"]
        dx, dw, db = K.batchnorm_bwd(_ncl(g), self.x, self.mean, self.inv, self.weight, training)
        return (
            dx.reshape(self.shape) if self.needs[0] else None,
            dw if self.needs[1] else None,
            db if self.needs[2] else None,
            None,
            None,
        )


class LayerNorm(Op):
    """y = (x - mean) / sqrt(var + eps) * w + b over the trailing dims;
    dx = inv * (g w - mean(g w) - xh * mean(g w xh)), dw = sum(g xh), db = sum(g)"""

    name, onnx = "layer_norm", "LayerNormalization"

    def forward(self, x, weight, bias, normalized_shape, eps):
        d = math.prod(normalized_shape)
        self.shape = x.shape
        self.x = x2 = np.ascontiguousarray(x).reshape(-1, d) if d else x.reshape(0, 0)
        self.w = w = weight.reshape(d)
        if x.size == 0:
            return np.empty_like(x)
        y, self.mean, self.inv = K.layernorm_fwd(x2, w, bias.reshape(d), eps)
        return y.reshape(x.shape)

    def backward(self, g):
        ns = self.attrs["normalized_shape"]
        if self.x.size == 0:
            zw = np.zeros(ns, self.w.dtype)
            return np.zeros(self.shape, g.dtype), zw, zw.copy()
        g2 = np.ascontiguousarray(g).reshape(self.x.shape)
        dx, dw, db = K.layernorm_bwd(g2, self.x, self.mean, self.inv, self.w)
        return (
            dx.reshape(self.shape) if self.needs[0] else None,
            dw.reshape(ns) if self.needs[1] else None,
            db.reshape(ns) if self.needs[2] else None,
        )


class GroupNorm(Op):
    """y = (x - mean_g) / sqrt(var_g + eps) * w_c + b_c, stats per sample and channel group;
    dx = inv * (g w - mean_g(g w) - xh * mean_g(g w xh))"""

    name, onnx = "group_norm", "GroupNormalization"

    def forward(self, x, weight, bias, num_groups, eps):
        self.shape = x.shape
        self.x = x3 = _ncl(x)
        self.weight = weight
        if x.size == 0:
            return np.empty_like(x)
        y, self.mean, self.inv = K.groupnorm_fwd(x3, weight, bias, num_groups, eps)
        return y.reshape(x.shape)

    def backward(self, g):
        if self.x.size == 0:
            w = self.weight
            return np.zeros(self.shape, g.dtype), np.zeros_like(w), np.zeros_like(w)
        dx, dw, db = K.groupnorm_bwd(
            _ncl(g), self.x, self.mean, self.inv, self.weight, self.attrs["num_groups"]
        )
        return (
            dx.reshape(self.shape) if self.needs[0] else None,
            dw if self.needs[1] else None,
            db if self.needs[2] else None,
        )


# -- functional API -------------------------------------------------------------------------


def _float_input(x, opname: str, min_dims: int) -> Tensor:
    x = lift(x)
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float input, got {x.dtype}", opname)
    if x.ndim < min_dims:
        raise BpcliError(f"needs at least {min_dims} dims, got shape {x.shape}", opname)
    return x


def _param(p, x: Tensor, shape: tuple[int, ...], fill: float, what: str, opname: str) -> Tensor:
    """weight/bias of ``shape`` in x's dtype; None becomes a constant ``fill``."""
    if p is None:
        return const(np.full(shape, fill, dtype=x.dtype))
    p = lift(p, x)
    if p.shape != shape:
        raise BpcliError(
            f"{what} has shape {p.shape}, expected {shape} for input {x.shape}", opname
        )
    if p.dtype != x.dtype:
        raise BpcliError(f"{what} is {p.dtype} but the input is {x.dtype}", opname)
    return p


def _running(r, x: Tensor, c: int, what: str) -> Tensor:
    r = r if isinstance(r, Tensor) else Tensor(r)
    if r.shape != (c,):
        raise BpcliError(
            f"{what} has shape {r.shape}, expected ({c},) for input {x.shape}", "batch_norm"
        )
    if r.dtype != x.dtype:
        raise BpcliError(f"{what} is {r.dtype} but the input is {x.dtype}", "batch_norm")
    if r.requires_grad:
        raise BpcliError(
            f"{what} must not require grad: it is a buffer updated in place", "batch_norm"
        )
    if not r.data.flags.writeable:
        raise BpcliError(f"{what} is read-only and cannot be updated in place", "batch_norm")
    return r


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over (N, C) or (N, C, *), per channel C, as ``torch.nn.functional``.

    In training the batch statistics normalise and ``running_mean``/``running_var`` (when given)
    are updated in place: ``r = (1 - momentum) r + momentum * stat`` with the unbiased variance.
    In eval the running statistics normalise and are constants of the gradient.
    """
    x = _float_input(input, "batch_norm", 2)
    c = x.shape[1]
    training = bool(training)
    if training:
        m = x.numel() // max(c, 1)
        if m <= 1:
            raise BpcliError(
                f"expected more than 1 value per channel when training, got input {x.shape}",
                "batch_norm",
            )
        if momentum is None:
            raise BpcliError(
                "momentum=None (cumulative average) is not supported: pass "
                "momentum=1/num_batches_tracked instead",
                "batch_norm",
            )
    elif running_mean is None or running_var is None:
        raise BpcliError(
            "running_mean and running_var are needed when training=False", "batch_norm"
        )
    update = running_mean is not None and running_var is not None
    if update:
        rm = _running(running_mean, x, c, "running_mean")
        rv = _running(running_var, x, c, "running_var")
    else:
        rm = const(np.zeros(c, x.dtype))
        rv = const(np.ones(c, x.dtype))
    w = _param(weight, x, (c,), 1.0, "weight", "batch_norm")
    b = _param(bias, x, (c,), 0.0, "bias", "batch_norm")
    return BatchNorm.apply(
        x, w, b, rm, rv, training=training, momentum=float(momentum or 0.0), eps=float(eps),
        update=update,
    )  # fmt: skip


def layer_norm(
    input,
    normalized_shape,
    weight=None,
    bias=None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims, as ``torch.nn.functional``."""
    x = _float_input(input, "layer_norm", 1)
    ns = (normalized_shape,) if isinstance(normalized_shape, int | np.integer) else normalized_shape
    ns = tuple(int(n) for n in ns)
    if not ns or len(ns) > x.ndim or x.shape[x.ndim - len(ns) :] != ns:
        raise BpcliError(
            f"normalized_shape {ns} is not the trailing dims of input shape {x.shape}", "layer_norm"
        )
    w = _param(weight, x, ns, 1.0, "weight", "layer_norm")
    b = _param(bias, x, ns, 0.0, "bias", "layer_norm")
    return LayerNorm.apply(x, w, b, normalized_shape=ns, eps=float(eps))


def group_norm(
    input,
    num_groups: int,
    weight=None,
    bias=None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each sample over groups of channels of (N, C, *), as ``torch.nn.functional``."""
    x = _float_input(input, "group_norm", 2)
    c = x.shape[1]
    num_groups = int(num_groups)
    if num_groups <= 0 or c % num_groups:
        raise BpcliError(
            f"{c} channels (input {x.shape}) do not split into {num_groups} groups", "group_norm"
        )
    w = _param(weight, x, (c,), 1.0, "weight", "group_norm")
    b = _param(bias, x, (c,), 0.0, "bias", "group_norm")
    return GroupNorm.apply(x, w, b, num_groups=num_groups, eps=float(eps))
