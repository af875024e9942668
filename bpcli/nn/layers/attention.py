"""MultiheadAttention with PyTorch's arguments, parameter names, masks and outputs."""

from __future__ import annotations

import math

import numpy as np

from bpcli import functional as F
from bpcli.engine.convert import lift
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.layers.linear import Linear
from bpcli.nn.module import Module, Parameter

__all__ = ["LAYERS", "MultiheadAttention"]

_WHERE = "MultiheadAttention"


class MultiheadAttention(Module):
    """softmax(q k^T / sqrt(d) + mask) v over ``num_heads`` heads, then ``out_proj``
    (torch.nn.MultiheadAttention).

    Parameters as torch: ``in_proj_weight`` (3E, E) packed q, k, v (or ``q_proj_weight``,
    ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from E), ``in_proj_bias``
    (3E,), and ``out_proj`` a Linear(E, E). Inputs are (L, N, E), or (N, L, E) with
    ``batch_first``, or unbatched (L, E).
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
        add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
        vdim: int | None = None, batch_first: bool = False, dtype=None,
    ):  # fmt: skip
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise BpcliError(
                f"embed_dim {embed_dim} must be a positive multiple of num_heads {num_heads}",
                _WHERE,
            )
        if add_bias_kv or add_zero_attn:
            raise BpcliError("add_bias_kv and add_zero_attn are not supported", _WHERE)
        if not 0.0 <= float(dropout) <= 1.0:
            raise BpcliError(f"dropout must be in [0, 1], got {dropout}", _WHERE)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.dropout, self.batch_first, self.use_bias = float(dropout), bool(batch_first), bias
        self.dtype = np.dtype(dtype or np.float32)
        e, dt = embed_dim, self.dtype
        self.packed = self.kdim == e and self.vdim == e
        if self.packed:
            self.in_proj_weight = Parameter(np.empty((3 * e, e), dt))
            init.xavier_uniform_(self.in_proj_weight)
        else:
            self.register_parameter("in_proj_weight", None)
            for name, d in (("q", e), ("k", self.kdim), ("v", self.vdim)):
                p = Parameter(np.empty((e, d), dt))
                init.xavier_uniform_(p)
                self.register_parameter(f"{name}_proj_weight", p)
        self.in_proj_bias = Parameter(np.zeros(3 * e, dt)) if bias else None
        if not bias:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, dtype=dt)
        if bias:
            init.zeros_(self.out_proj.bias)

    def get_config(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dropout": self.dropout, "bias": self.use_bias, "kdim": self.kdim,
                "vdim": self.vdim, "batch_first": self.batch_first,
                "dtype": self.dtype.name}  # fmt: skip

    def _project(self, query, key, value):
        e, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        if self.packed:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one GEMM for q, k and v
                return F.split(F.linear(query, w, b), e, axis=-1)
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _mask(self, attn_mask, key_padding_mask, is_causal, n, big_l, big_s, like):
        """One additive float mask broadcastable to (N, heads, L, S), or None."""
        h = self.num_heads
        if attn_mask is None and is_causal:
            attn_mask = np.triu(np.ones((big_l, big_s), dtype=bool), 1)
        masks = []
        for m, name, shapes in (
            (attn_mask, "attn_mask", {(big_l, big_s), (n * h, big_l, big_s)}),
            (key_padding_mask, "key_padding_mask", {(n, big_s)}),
        ):
            if m is None:
                continue
            m = lift(m)
            if m.shape not in shapes:
                raise BpcliError(f"{name} has shape {m.shape}, expected one of "
                                 f"{sorted(shapes)}", _WHERE)  # fmt: skip
            if m.dtype == np.bool_:  # torch: True means "do not attend"
                m = lift(np.where(m.numpy(), -np.inf, 0.0).astype(like.dtype))
            elif m.dtype != like.dtype:
                raise BpcliError(f"{name} is {m.dtype}; use bool or {like.dtype}", _WHERE)
            if name == "key_padding_mask":
                m = F.reshape(m, (n, 1, 1, big_s))
            elif m.ndim == 3:
                m = F.reshape(m, (n, h, big_l, big_s))
            masks.append(m)
        if not masks:
            return None
        return masks[0] if len(masks) == 1 else masks[0] + masks[1]

    def forward(
        self, query, key, value, key_padding_mask=None, need_weights: bool = True,
        attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False,
    ):  # fmt: skip
        """Returns ``(output, weights)``: output like query; weights (N, L, S) averaged over
        heads, (N, heads, L, S) if not ``average_attn_weights``, None if not ``need_weights``."""
        same_kv, same_qk = key is value, query is key
        q, k, v = lift(query), lift(key), lift(value)
        if q.ndim not in (2, 3) or k.ndim != q.ndim or v.ndim != q.ndim:
            raise BpcliError(f"query {q.shape}, key {k.shape}, value {v.shape} must all be 3-d "
                             "(batched) or 2-d (unbatched)", _WHERE)  # fmt: skip
        unbatched = q.ndim == 2
        if unbatched:  # work as a batch of one: (L, 1, E)
            q, k, v = (F.unsqueeze(t, 1) for t in (q, k, v))
            if key_padding_mask is not None:
                key_padding_mask = np.asarray(lift(key_padding_mask).numpy())[None]
        # internally batch first: (N, L, E)
        if not (self.batch_first and not unbatched):
            q, k, v = (F.swapaxes(t, 0, 1) for t in (q, k, v))
        if same_kv:
            v = k
        if same_qk and same_kv:
            k = v = q
        n, big_l, big_s = q.shape[0], q.shape[1], k.shape[1]
        self._check_shapes(q, k, v)
        q, k, v = self._project(q, k, v)
        h, d = self.num_heads, self.head_dim
        q, k, v = (F.swapaxes(F.reshape(t, (n, -1, h, d)), 1, 2) for t in (q, k, v))
        scores = F.matmul(q * (1.0 / math.sqrt(d)), F.swapaxes(k, -1, -2))
        mask = self._mask(attn_mask, key_padding_mask, is_causal, n, big_l, big_s, scores)
        if mask is not None:
            scores = scores + mask
        attn = F.softmax(scores, axis=-1)
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, self.dropout, training=True)
        out = F.reshape(F.swapaxes(F.matmul(attn, v), 1, 2), (n, big_l, self.embed_dim))
        out = self.out_proj(out)
        if unbatched:
            out = F.squeeze(out, 0)
        elif not self.batch_first:
            out = F.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            attn = F.mean(attn, axis=1)
        return out, (F.squeeze(attn, 0) if unbatched else attn)

    def _check_shapes(self, q, k, v):
        if (q.shape[-1], k.shape[-1], v.shape[-1]) != (self.embed_dim, self.kdim, self.vdim):
            raise BpcliError(
                f"query {q.shape}, key {k.shape}, value {v.shape} do not fit embed_dim "
                f"{self.embed_dim}, kdim {self.kdim}, vdim {self.vdim}",
                _WHERE,
            )
        if k.shape[:2] != v.shape[:2] or q.shape[0] != k.shape[0]:
            raise BpcliError(f"query {q.shape}, key {k.shape}, value {v.shape}: batch or "
                             "source lengths differ", _WHERE)  # fmt: skip
        if q.dtype != self.dtype or k.dtype != self.dtype or v.dtype != self.dtype:
            raise BpcliError(f"inputs must be {self.dtype}, got {q.dtype}, {k.dtype}, "
                             f"{v.dtype}", _WHERE)  # fmt: skip


LAYERS = {"multihead_attention": MultiheadAttention}
