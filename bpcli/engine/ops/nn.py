"""Neural-net building blocks: softmax, log_softmax, dropout, embedding, attention.

Names, argument orders and defaults follow ``torch.nn.functional``.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine import random as bprandom
from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.ops import elementwise, linalg
from bpcli.engine.ops import shape as shape_ops
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.dropout import dropout_bwd, dropout_fwd, dropout_keep
from bpcli.kernels.embedding import embedding_bwd
from bpcli.kernels.softmax import softmax_rows, softmax_rows_bwd

__all__ = [
    "dropout",
    "embedding",
    "log_softmax",
    "scaled_dot_product_attention",
    "softmax",
]  # fmt: skip


def _softmax_fwd(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    if x.ndim == 0:
        return _softmax_fwd(x.reshape(1), 0, log).reshape(())
    if x.size == 0:
        return np.empty_like(x)
    if axis == x.ndim - 1:
        # The last axis is the common case (classifiers, attention): one fused pass per row.
        c = x.shape[-1]
        return softmax_rows(np.ascontiguousarray(x).reshape(-1, c), log).reshape(x.shape)
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    e = np.exp(z)
    s = np.sum(e, axis=axis, keepdims=True)
    if log:
        return z - np.log(s)
    e /= s
    return e


class Softmax(Op):
    """y = exp(x - max) / sum(exp(x - max)) along axis; dx = y * (g - sum(g * y))"""

    name, onnx, saves_inputs = "softmax", "Softmax", False

    def forward(self, x, axis):
        self.y = _softmax_fwd(x, axis, log=False)
        return self.y

    def backward(self, g):
        y, axis = self.y, self.attrs["axis"]
        if y.ndim == 0:
            return np.zeros_like(g)
        if axis == y.ndim - 1 and y.size and g.dtype == y.dtype:
            # One fused pass per row instead of four numpy passes and two temporaries.
            c = y.shape[-1]
            dx = softmax_rows_bwd(y.reshape(-1, c), np.ascontiguousarray(g).reshape(-1, c))
            return dx.reshape(y.shape)
        gy = g * y
        gy -= y * np.sum(gy, axis=axis, keepdims=True)
        return gy


class LogSoftmax(Op):
    """y = x - logsumexp(x) along axis; dx = g - exp(y) * sum(g)"""

    name, onnx, saves_inputs = "log_softmax", "LogSoftmax", False

    def forward(self, x, axis):
        self.y = _softmax_fwd(x, axis, log=True)
        return self.y

    def backward(self, g):
        y, axis = self.y, self.attrs["axis"]
        if y.ndim == 0:
            return np.zeros_like(g)
        return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


def _axis(axis, dim, ndim: int, opname: str) -> int:
    if dim is not None:
        if axis is not None and axis != -1:
            raise BpcliError("give axis= or dim=, not both", opname)
        axis = dim
    axis = -1 if axis is None else int(axis)
    n = max(ndim, 1)
    if not -n <= axis < n:
        raise BpcliError(f"axis {axis} is out of range for a tensor with {ndim} dims", opname)
    return axis % n if ndim else 0


def softmax(x, axis: int | None = -1, *, dim: int | None = None) -> Tensor:
    """Softmax along ``axis`` (``dim=`` accepted), computed stably (max subtracted)."""
    x = lift(x)
    return Softmax.apply(x, axis=_axis(axis, dim, x.ndim, "softmax"))


def log_softmax(x, axis: int | None = -1, *, dim: int | None = None) -> Tensor:
    """Log of the softmax along ``axis`` (``dim=`` accepted), as ``x - logsumexp(x)``."""
    x = lift(x)
    return LogSoftmax.apply(x, axis=_axis(axis, dim, x.ndim, "log_softmax"))


# -- dropout --------------------------------------------------------------------------------


def _mask_args(p: float, seed: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(seed % 2**64), np.uint64(min(round(p * 2**32), 2**32))


def dropout_mask(shape: tuple[int, ...], p: float, seed: int) -> np.ndarray:
    """The keep-mask the dropout op draws for ``seed``: True with probability ``1 - p``."""
    return dropout_keep(math.prod(shape), *_mask_args(p, seed)).reshape(shape)


class Dropout(Op):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) from seed; dx = g * mask / (1 - p)"""

    name, onnx, saves_inputs = "dropout", "Dropout", False
    n_outputs = 2  # (y, mask), as ONNX Dropout

    def forward(self, x, p, seed):
        # NOTE: p == 1 keeps nothing: scale 0 (not inf) so the output is zeros, not nan.
        self.scale = x.dtype.type(0.0 if p >= 1.0 else 1.0 / (1.0 - p))
        if x.dtype.kind != "f":
            self.mask = dropout_mask(x.shape, p, seed)
            return x * self.mask * self.scale, self.mask
        # One fused pass draws the mask and scales (the mask is a hash of (seed, index)).
        y, keep = dropout_fwd(np.ascontiguousarray(x).reshape(-1), *_mask_args(p, seed),
                              self.scale)  # fmt: skip
        self.mask = keep.reshape(x.shape)
        return y.reshape(x.shape), self.mask

    def backward(self, g, _gmask):
        if g.dtype.kind != "f":
            return g * self.mask * self.scale
        dx = dropout_bwd(np.ascontiguousarray(g).reshape(-1), self.mask.reshape(-1), self.scale)
        return dx.reshape(g.shape)


def dropout(x, p: float = 0.5, training: bool = True, generator=None, seed=None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    The mask comes from ``generator``, else a generator seeded with ``seed``, else the default
    generator (``bp.manual_seed``). With ``p == 0`` or ``training=False`` ``x`` is returned.
    """
    x = lift(x)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise BpcliError(f"dropout probability has to be between 0 and 1, but got {p}", "dropout")
    if not training or p == 0.0:
        return x
    if seed is not None and generator is None:
        op_seed = int(seed)
    else:
        op_seed = int(bprandom.resolve(generator).integers(0, 2**63 - 1))
    start, rows = bprandom.batch_shard()
    if start and rows and x.data.size % rows == 0:
        # NOTE: element i's mask is a hash of seed + (i + 1) * golden (kernels/dropout.py), so
        # adding offset * golden to the seed gives this shard the global batch's elements.
        op_seed = (op_seed + start * (x.data.size // rows) * 0x9E3779B97F4A7C15) % 2**64
    return Dropout.apply(x, p=p, seed=op_seed)[0]


# -- embedding ------------------------------------------------------------------------------


class Embedding(Op):
    """y = weight[idx]; dweight = scatter_add(g) into the rows idx (none into padding_idx)"""

    name, onnx = "embedding", "Gather"  # Gather(weight, idx, axis=0)

    def forward(self, weight, idx, padding_idx):
        self.idx, self.rows = idx, weight.shape[0]
        return np.take(weight, idx, axis=0)

    def backward(self, g):
        if not self.needs[0]:
            return None, None
        dim = g.shape[-1]
        pad = -1 if self.attrs["padding_idx"] is None else self.attrs["padding_idx"]
        flat = np.ascontiguousarray(self.idx, dtype=np.int64).reshape(-1)
        g2 = np.ascontiguousarray(g).reshape(-1, dim)
        return embedding_bwd(flat, g2, self.rows, pad), None


def embedding(input, weight, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``input`` of any shape.

    Rows at ``padding_idx`` get no gradient.
    """
    weight, idx = lift(weight), lift(input)
    if weight.ndim != 2:
        raise BpcliError(
            f"weight must be 2-D (num_embeddings, dim), got {weight.shape}", "embedding"
        )
    if idx.dtype.kind not in "iu":
        raise BpcliError(f"indices must be integers, got {idx.dtype}", "embedding")
    n = weight.shape[0]
    if idx.numel() and (idx.data.min() < 0 or idx.data.max() >= n):
        raise BpcliError(
            f"index out of range [0, {n}): min {idx.data.min()}, max {idx.data.max()}",
            "embedding",
        )
    if padding_idx is not None:
        padding_idx = int(padding_idx)
        if not -n <= padding_idx < n:
            raise BpcliError(f"padding_idx {padding_idx} out of range for {n} rows", "embedding")
        padding_idx %= n
    return Embedding.apply(weight, idx, padding_idx=padding_idx)


# -- attention ------------------------------------------------------------------------------


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
    scale: float | None = None, enable_gqa: bool = False, *, generator=None,
) -> Tensor:  # fmt: skip
    """softmax(q k^T * scale + mask) v over shapes (..., L, E), (..., S, E), (..., S, Ev).

    A boolean ``attn_mask`` marks the pairs that take part (True); a float one is added to
    the scores (and gets a gradient). ``is_causal`` masks the upper triangle (top-left
    aligned, as torch). ``scale`` defaults to 1/sqrt(E). ``enable_gqa`` lets key/value have
    fewer heads (dim -3) than query, each shared by a group of query heads. A query row with
    no key left (all masked) gives zeros, as torch.
    """
    where = "scaled_dot_product_attention"
    q, k, v = lift(query), lift(key), lift(value)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise BpcliError(
            f"query, key, value need >= 2 dims (..., L, E), got {q.shape}, {k.shape}, {v.shape}",
            where,
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise BpcliError(
            f"query {q.shape}, key {k.shape}, value {v.shape}: need query/key sharing E "
            "and key/value sharing S",
            where,
        )
    if is_causal and attn_mask is not None:
        raise BpcliError("explicit attn_mask should not be set when is_causal=True", where)
    dropout_p = float(dropout_p)
    if not 0.0 <= dropout_p <= 1.0:
        raise BpcliError(f"dropout_p must be in [0, 1], got {dropout_p}", where)
    if enable_gqa:
        k, v = _gqa(q, k, where), _gqa(q, v, where)
    big_l, big_s = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = linalg.matmul(q, shape_ops.swapaxes(k, -1, -2)) * scale
    if is_causal:
        attn_mask = np.tril(np.ones((big_l, big_s), dtype=bool))
    dead = None  # rows where every key is masked out
    if attn_mask is not None:
        m = lift(attn_mask)
        try:
            np.broadcast_shapes(m.shape, scores.shape)
        except ValueError:
            raise BpcliError(f"attn_mask of shape {m.shape} does not broadcast to the scores "
                             f"{scores.shape}", where) from None  # fmt: skip
        if m.dtype == np.bool_:
            neg_inf = const(np.asarray(-np.inf, dtype=scores.dtype))
            scores = elementwise.where(m, scores, neg_inf)
            dead = ~np.any(m.data, axis=-1, keepdims=True)
        else:
            scores = scores + m
            dead = np.all(scores.data == -np.inf, axis=-1, keepdims=True)
        if not dead.any():
            dead = None
    if dead is not None:
        # NOTE: softmax of an all -inf row is nan; torch's safe softmax gives 0 there (and a
        # zero gradient): a finite stand-in row, then the row zeroed.
        scores = elementwise.where(dead, const(np.zeros((), scores.dtype)), scores)
    attn = softmax(scores, axis=-1)
    if dead is not None:
        attn = attn * const((~dead).astype(attn.dtype))
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True, generator=generator)
    return linalg.matmul(attn, v)


def _gqa(q: Tensor, kv: Tensor, where: str) -> Tensor:
    """Key or value with its heads (dim -3) repeated to the query's, each ``hq / hk`` times
    in a row (torch's repeat_interleave)."""
    expand, reshape = shape_ops.expand, shape_ops.reshape
    if q.ndim < 3 or kv.ndim < 3:
        raise BpcliError("enable_gqa needs (..., heads, L, E) inputs with >= 3 dims", where)
    hq, hk = q.shape[-3], kv.shape[-3]
    if hk == hq:
        return kv
    if hk == 0 or hq % hk:
        raise BpcliError(f"number of heads in key and value ({hk}) must divide the number of "
                         f"heads in query ({hq})", where)  # fmt: skip
    # (..., hk, 1, S, E) expanded to (..., hk, r, S, E): the backward is a sum, not a scatter
    *lead, _, big_s, e = kv.shape
    grouped = expand(reshape(kv, (*lead, hk, 1, big_s, e)), (*lead, hk, hq // hk, big_s, e))
    return reshape(grouped, (*lead, hq, big_s, e))
