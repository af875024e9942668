"""Cases for engine/ops/nn.py: softmax, log_softmax, dropout, embedding, attention."""

import torch
from hypothesis import strategies as st

from bpcli import functional as F
from bpcli.engine.ops.nn import dropout_mask
from tests.engine.harness import Case, one_shape

TF = torch.nn.functional
U1 = one_shape(min_dims=1, min_side=0)


def _dropout_ref(p, seed):
    def ref(x):
        keep = torch.tensor(dropout_mask(tuple(x.shape), p, seed))
        return x * keep / (1 - p) if p < 1 else x * 0

    return ref


# (num_embeddings, dim), index shape: few rows so indices repeat.
EMB = st.tuples(st.integers(1, 5), st.integers(1, 4), st.lists(st.integers(0, 4), max_size=3)).map(
    lambda r: ((r[0], r[1]), tuple(r[2]))
)


def _emb_inputs(shapes, dtype, rng):
    (v, d), ishape = shapes
    return [rng.standard_normal((v, d)).astype(dtype), rng.integers(0, v, ishape)]


def _emb_pad_inputs(shapes, dtype, rng):
    w, idx = _emb_inputs(shapes, dtype, rng)
    idx.flat[: idx.size // 2] = 0  # some lookups hit padding_idx 0
    return [w, idx]


# query (B, L, E), key (B, S, E), value (B, S, Ev)
ATT = st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
                st.integers(1, 3)).map(
    lambda r: ((r[0], r[1], r[3]), (r[0], r[2], r[3]), (r[0], r[2], r[4]))
)  # fmt: skip
# causal needs L <= S so that every query row sees at least one key
ATT_CAUSAL = ATT.filter(lambda s: s[0][1] <= s[1][1])


def _att_bool_mask(shapes, dtype, rng):
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    mask = rng.random((shapes[0][1], shapes[1][1])) > 0.4
    mask[:, 0] = True  # no fully-masked row (softmax of all -inf is nan)
    return [q, k, v, mask]


def _att_float_mask(shapes, dtype, rng):
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    return [q, k, v, rng.standard_normal((shapes[0][1], shapes[1][1])).astype(dtype)]


def _sdpa(*a, **kw):
    return F.scaled_dot_product_attention(*a, **kw)


ATT_TOL = dict(tol32=(2e-4, 2e-5), tol64=(1e-8, 1e-10))

CASES = [
    Case("softmax", lambda x: F.softmax(x), lambda x: torch.softmax(x, -1),
         one_shape(min_side=0)),
    Case("softmax", lambda x: F.softmax(x, axis=0), lambda x: torch.softmax(x, 0), U1,
         id="softmax_axis0"),
    Case("softmax", lambda x: x.softmax(dim=1), lambda x: torch.softmax(x, 1),
         one_shape(min_dims=2, max_dims=4), id="softmax_method_dim1"),
    Case("log_softmax", lambda x: F.log_softmax(x), lambda x: torch.log_softmax(x, -1),
         one_shape(min_side=0)),
    Case("log_softmax", lambda x: x.log_softmax(dim=0), lambda x: torch.log_softmax(x, 0), U1,
         id="log_softmax_axis0"),
    Case("log_softmax", lambda x: F.log_softmax(x * 40.0),
         lambda x: torch.log_softmax(x * 40.0, -1),
         one_shape(min_dims=1), id="log_softmax_large", tol32=(1e-4, 1e-4)),
    Case("dropout", lambda x: F.dropout(x, 0.3, seed=7), _dropout_ref(0.3, 7), U1),
    Case("dropout", lambda x: F.dropout(x, 0.9, seed=11), _dropout_ref(0.9, 11), U1,
         id="dropout_p09"),
    Case("dropout", lambda x: F.dropout(x, 1.0, seed=3), _dropout_ref(1.0, 3), U1,
         id="dropout_p1"),
    Case("dropout", lambda x: F.dropout(x * 1.0, 0.5, training=False), lambda x: x * 1.0, U1,
         id="dropout_eval", covers=("mul",)),
    Case("embedding", lambda w, i: F.embedding(i, w), lambda w, i: TF.embedding(i, w), EMB,
         gen=_emb_inputs, diff=(True, False)),
    Case("embedding", lambda w, i: F.embedding(i, w, padding_idx=0),
         lambda w, i: TF.embedding(i, w, padding_idx=0), EMB, gen=_emb_pad_inputs,
         diff=(True, False), id="embedding_padding", fd=False),  # no grad into padding: by design
    Case("softmax", _sdpa, TF.scaled_dot_product_attention, ATT, id="sdpa",
         **ATT_TOL),
    Case("softmax", lambda q, k, v: _sdpa(q, k, v, is_causal=True, scale=0.3),
         lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
         ATT_CAUSAL, id="sdpa_causal", covers=("where",), **ATT_TOL),
    Case("softmax", lambda q, k, v, m: _sdpa(q, k, v, attn_mask=m),
         lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m), ATT,
         gen=_att_bool_mask, diff=(True, True, True, False), id="sdpa_bool_mask", **ATT_TOL),
    Case("softmax", lambda q, k, v, m: _sdpa(q, k, v, attn_mask=m),
         lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m), ATT,
         gen=_att_float_mask, id="sdpa_float_mask", **ATT_TOL),
]  # fmt: skip
