"""Cases for engine/ops/loss_more.py, each loss against torch.nn.functional."""

import numpy as np
import torch
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case, broadcast_shapes, fixed, one_shape

TF = torch.nn.functional
REDS = ("mean", "sum", "none")
ROWS = st.tuples(st.integers(1, 5), st.integers(1, 6))  # (N, D)
ANY = one_shape(min_side=0)


def _same(n):
    return one_shape(min_side=0).map(lambda s: s * n)


def _probs(weight=False, edges=False):
    def gen(shapes, dtype, rng):
        x = np.asarray(rng.uniform(0.02, 0.98, shapes[0]))
        if edges and x.size:  # exact 0 and 1: torch's clamp at -100 and 1e-12 floor decide
            x.flat[::3] = 0.0
            x.flat[1::3] = 1.0
        y = rng.uniform(0, 1, shapes[0])
        out = [x.astype(dtype), y.astype(dtype)]
        if weight:
            out.append(rng.uniform(0.2, 2.0, shapes[0][-1:] if shapes[0] else ()).astype(dtype))
        return out

    return gen


def _bce(red, w=False):
    if w:
        return (
            lambda x, y, wt: F.binary_cross_entropy(x, y, wt, reduction=red),
            lambda x, y, wt: TF.binary_cross_entropy(x, y, wt, reduction=red),
        )
    return (lambda x, y: F.binary_cross_entropy(x, y, reduction=red),
            lambda x, y: TF.binary_cross_entropy(x, y, reduction=red))  # fmt: skip


def _signs(*float_inputs):
    """``float_inputs`` normal tensors then a +-1 target of the last shape."""

    def gen(shapes, dtype, rng):
        out = [rng.standard_normal(s).astype(dtype) for s in shapes[: float_inputs[0]]]
        out.append(rng.choice([-1.0, 1.0], shapes[-1]).astype(dtype))
        return out

    return gen


def _classes(weight=False):
    def gen(shapes, dtype, rng):
        x = rng.standard_normal(shapes[0]).astype(dtype)
        c = shapes[0][-1]
        out = [x, rng.integers(0, c, shapes[1])]
        if weight:
            out.append(rng.uniform(0.2, 2.0, c).astype(dtype))
        return out

    return gen


MM2 = ROWS.map(lambda r: ((r[0], r[1]), (r[0],)))
MM1 = st.integers(1, 6).map(lambda c: ((c,), ()))
PAIRS = ROWS.map(lambda r: ((r[0], r[1]), (r[0], r[1])))
EMB = ROWS.map(lambda r: ((r[0], r[1]), (r[0], r[1]), (r[0],)))
TRIP = ROWS.map(lambda r: ((r[0], r[1]),) * 3)
MARGIN = broadcast_shapes(3, max_dims=3)

CASES = [
    *[Case("binary_cross_entropy", *_bce(r), _same(2), gen=_probs(), id=f"bce_{r}",
           diff=(True, True)) for r in REDS],
    Case("binary_cross_entropy", *_bce("mean", True), one_shape(min_dims=1),
         gen=_probs(weight=True), diff=(True, True, False), id="bce_weight"),
    Case("binary_cross_entropy", *_bce("none"), _same(2), gen=_probs(edges=True), fd=False,
         id="bce_at_0_and_1", diff=(True, True)),
    Case("l2norm", F.cosine_similarity, TF.cosine_similarity, PAIRS, id="cosine_similarity",
         covers=("clamp_min_passthrough",)),
    Case("l2norm", lambda a, b: F.cosine_similarity(a, b, dim=-1),
         lambda a, b: TF.cosine_similarity(a, b, dim=-1), broadcast_shapes(2, min_dims=1),
         id="cosine_similarity_broadcast"),
    Case("l2norm", F.cosine_similarity, TF.cosine_similarity, fixed((2, 3), (2, 3)),
         gen=lambda s, d, r: [np.array([[0, 0, 0], [1e-9, 2e-9, 0]], d),
                              r.standard_normal((2, 3)).astype(d)],
         fd=False, id="cosine_similarity_tiny_norm"),
    Case("l2norm", F.pairwise_distance, TF.pairwise_distance, PAIRS, id="pairwise_distance"),
    Case("pnorm", lambda a, b: F.pairwise_distance(a, b, p=1.5, keepdim=True),
         lambda a, b: TF.pairwise_distance(a, b, p=1.5, keepdim=True), PAIRS,
         id="pairwise_distance_p"),
    *[Case("l2norm", lambda a, p, n, r=r, s=s: F.triplet_margin_loss(a, p, n, swap=s,
                                                                      reduction=r),
           lambda a, p, n, r=r, s=s: TF.triplet_margin_loss(a, p, n, swap=s, reduction=r),
           TRIP, id=f"triplet_{r}_{s}") for r in REDS for s in (False, True)],
    *[Case("clip", lambda a, b, y, r=r: F.margin_ranking_loss(a, b, y, 0.3, reduction=r),
           lambda a, b, y, r=r: TF.margin_ranking_loss(a, b, y, 0.3, reduction=r),
           ROWS.map(lambda s: ((s[0],),) * 3), gen=_signs(2), diff=(True, True, False),
           id=f"margin_ranking_{r}") for r in REDS],
    *[Case("clip", lambda x, y, r=r: F.hinge_embedding_loss(x, y, 0.5, reduction=r),
           lambda x, y, r=r: TF.hinge_embedding_loss(x, y, 0.5, reduction=r), _same(2),
           gen=_signs(1), diff=(True, False), id=f"hinge_embedding_{r}") for r in REDS],
    *[Case("log1p", lambda x, y, r=r: F.soft_margin_loss(x, y, reduction=r),
           lambda x, y, r=r: TF.soft_margin_loss(x, y, reduction=r), _same(2), gen=_signs(1),
           diff=(True, False), id=f"soft_margin_{r}") for r in REDS],
    *[Case("relu", lambda x, t, p=p, r=r: F.multi_margin_loss(x, t, p=p, margin=0.7,
                                                               reduction=r),
           lambda x, t, p=p, r=r: TF.multi_margin_loss(x, t, p=p, margin=0.7, reduction=r),
           MM2, gen=_classes(), id=f"multi_margin_p{p}_{r}") for p in (1, 2) for r in REDS],
    Case("relu", F.multi_margin_loss, TF.multi_margin_loss, MM1, gen=_classes(),
         id="multi_margin_unbatched"),
    Case("relu", lambda x, t, w: F.multi_margin_loss(x, t, weight=w),
         lambda x, t, w: TF.multi_margin_loss(x, t, weight=w), MM2, gen=_classes(True),
         diff=(True, False, False), id="multi_margin_weight"),
    *[Case("logsigmoid", lambda x, y, r=r: F.multilabel_soft_margin_loss(x, y, reduction=r),
           lambda x, y, r=r: TF.multilabel_soft_margin_loss(x, y, reduction=r), PAIRS,
           gen=lambda s, d, g: [g.standard_normal(s[0]).astype(d),
                                (g.random(s[1]) > 0.5).astype(d)],
           diff=(True, False), id=f"multilabel_soft_margin_{r}") for r in REDS],
    Case("logsigmoid", lambda x, y, w: F.multilabel_soft_margin_loss(x, y, weight=w),
         lambda x, y, w: TF.multilabel_soft_margin_loss(x, y, weight=w),
         ROWS.map(lambda s: ((s[0], s[1]), (s[0], s[1]), (s[1],))),
         gen=lambda s, d, g: [g.standard_normal(s[0]).astype(d),
                              (g.random(s[1]) > 0.5).astype(d), g.uniform(0.5, 2, s[2]).astype(d)],
         diff=(True, False, False), id="multilabel_soft_margin_weight"),
    *[Case("sqrt", lambda a, b, y, r=r: F.cosine_embedding_loss(a, b, y, 0.2, reduction=r),
           lambda a, b, y, r=r: TF.cosine_embedding_loss(a, b, y, 0.2, reduction=r), EMB,
           gen=_signs(2), diff=(True, True, False), id=f"cosine_embedding_{r}") for r in REDS],
    Case("sqrt", F.cosine_embedding_loss, TF.cosine_embedding_loss,
         st.integers(1, 6).map(lambda d: ((d,), (d,), ())), gen=_signs(2),
         diff=(True, True, False), id="cosine_embedding_1d"),
]  # fmt: skip
