"""``train.sync_batchnorm = true``: BatchNorm normalises by the global batch's statistics.

In training mode each BatchNorm layer sums its shard's per-channel values across the ranks
(``AllreduceSum``, a differentiable collective), so every rank normalises with the mean and
variance of the whole global batch, as one process would; running statistics are updated
from them likewise. Eval mode uses the running statistics and needs no collective.
"""

from __future__ import annotations

import types

import numpy as np

from bpcli.engine.op import Op
from bpcli.nn.layers.norm import _BatchNorm


class AllreduceSum(Op):
    """y = sum over ranks of x; dx = sum over ranks of (w_r g_r) / w_r

    w_r is this rank's share of the global batch: the gradient every rank computes is scaled
    by it before the step's allreduce, so dividing here makes the cross-rank path come out as
    the gradient of the global loss. Not in the op table (name ""): it exists only under MPI.
    """

    name, saves_inputs = "", False

    def forward(self, x, par):
        out = np.ascontiguousarray(x, dtype=x.dtype).copy()
        par.comm.allreduce_(out)
        return out

    def backward(self, g):
        par = self.attrs["par"]
        w = par.n_local / par.n_global
        out = np.ascontiguousarray(g * w)
        par.comm.allreduce_(out)
        return out / w


def _sync_forward(self, x):
    """A BatchNorm layer's forward with the batch statistics of all ranks."""
    if not self.training or self.num_features is None:
        return type(self).forward(self, x)
    par = self._bpcli_par
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    total = float(np.prod([x.shape[a] for a in axes])) * par.n_global / par.n_local
    total = round(total)  # the global count of values per channel
    mean = AllreduceSum.apply(x.sum(dim=axes), par=par) / total
    d = x - mean.reshape(shape)
    var = AllreduceSum.apply((d * d).sum(dim=axes), par=par) / total
    y = d * ((var + self.eps) ** -0.5).reshape(shape)
    if self.weight is not None:
        y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
    if self.track_running_stats:
        self.num_batches_tracked.data[...] += 1
        self.num_batches_tracked._version += 1
        m = 1.0 / float(self.num_batches_tracked.data) if self.momentum is None else self.momentum
        rm, rv = self.running_mean.data, self.running_var.data
        rm *= 1 - m
        rm += m * mean.data.astype(rm.dtype)
        rv *= 1 - m
        rv += m * (var.data * (total / max(total - 1, 1))).astype(rv.dtype)
        self.running_mean._version += 1
        self.running_var._version += 1
    return y


def sync_batchnorm(model, par) -> int:
    """Make every BatchNorm layer of ``model`` reduce its statistics across the ranks; returns
    how many there are."""
    n = 0
    for _, m in model.named_modules():
        if isinstance(m, _BatchNorm):
            m._bpcli_par = par
            m.forward = types.MethodType(_sync_forward, m)
            n += 1
    return n
