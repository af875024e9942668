"""More cases of scaled_dot_product_attention: grouped-query heads, broadcast float masks (with
their gradient), fully masked rows, causal with more queries than keys, dropout."""

import numpy as np
import torch
from hypothesis import strategies as st

from bpcli import functional as F
from bpcli.engine.ops.nn import dropout_mask
from tests.engine.harness import Case

TF = torch.nn.functional
TOL = dict(tol32=(2e-4, 2e-5), tol64=(1e-8, 1e-10))

# query (B, Hq, L, E), key (B, Hk, S, E), value (B, Hk, S, Ev), Hk divides Hq
GQA = st.tuples(st.integers(1, 2), st.sampled_from([(2, 1), (4, 2), (3, 3)]), st.integers(1, 4),
                st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)).map(
    lambda r: ((r[0], r[1][0], r[2], r[4]), (r[0], r[1][1], r[3], r[4]),
               (r[0], r[1][1], r[3], r[5]))
)  # fmt: skip


def _with_mask(kind):
    def gen(shapes, dtype, rng):
        q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
        b, _, big_l, _ = shapes[0]
        big_s = shapes[1][2]
        if kind == "float_b1ls":  # broadcast over heads: its gradient sums over them
            m = rng.standard_normal((b, 1, big_l, big_s)).astype(dtype)
        elif kind == "float_dead_row":
            m = rng.standard_normal((big_l, big_s)).astype(dtype)
            m[0] = -np.inf  # every key of query 0 masked: torch gives zeros
        else:
            m = rng.random((big_l, big_s)) > 0.5
            m[0] = False
        return [q, k, v, m]

    return gen


def _sdpa(**kw):
    return (
        lambda *a: F.scaled_dot_product_attention(*a[:3], *a[3:], **kw),
        lambda *a: TF.scaled_dot_product_attention(*a[:3], *a[3:], **kw),
    )


def _dropout_pair(p):
    """bpcli's sdpa dropout against torch's math path fed bpcli's own keep-mask (torch's RNG
    cannot be matched): the same numbers iff the mask is applied where torch applies it."""

    def bpf(q, k, v):
        return F.scaled_dot_product_attention(
            q, k, v, dropout_p=p, generator=np.random.default_rng(5)
        )

    def tf(q, k, v):
        scores = q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])
        attn = torch.softmax(scores, -1)
        seed = int(np.random.default_rng(5).integers(0, 2**63 - 1))
        keep = torch.tensor(dropout_mask(tuple(attn.shape), p, seed))
        return (attn * keep / (1 - p)) @ v

    return bpf, tf


ATT = GQA.filter(lambda s: s[0][1] == s[1][1])  # no grouping: plain multi-head

CASES = [
    Case("softmax", *_sdpa(enable_gqa=True), GQA, id="sdpa_gqa", covers=("expand", "reshape"),
         **TOL),
    Case("softmax", *_sdpa(enable_gqa=True, is_causal=True, scale=0.7), GQA, id="sdpa_gqa_causal",
         **TOL),  # L > S included: torch's mask is top-left aligned
    Case("softmax", *_sdpa(enable_gqa=True), GQA, gen=_with_mask("float_b1ls"),
         id="sdpa_float_mask_broadcast", **TOL),
    Case("softmax", *_sdpa(enable_gqa=True), GQA, gen=_with_mask("float_dead_row"),
         id="sdpa_float_mask_dead_row", **TOL),
    Case("softmax", *_sdpa(enable_gqa=True), GQA, gen=_with_mask("bool_dead_row"),
         diff=(True, True, True, False), id="sdpa_bool_mask_dead_row", **TOL),
    Case("dropout", *_dropout_pair(0.3), ATT, id="sdpa_dropout", covers=("softmax",), **TOL),
]  # fmt: skip
