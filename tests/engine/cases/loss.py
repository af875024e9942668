"""Cases for engine/ops/loss.py, each loss against torch.nn.functional."""

import numpy as np
import torch
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case, away_from, broadcast_shapes, one_shape

TF = torch.nn.functional
REDS = ("mean", "sum", "none")

# logits (N, C) and targets (N,); logits (N, C, H, W) and targets (N, H, W)
CE2 = st.tuples(st.integers(1, 6), st.integers(1, 7)).map(lambda r: ((r[0], r[1]), (r[0],)))
CE4 = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)).map(
    lambda r: ((r[0], r[1], r[2], r[3]), (r[0], r[2], r[3]))
)
CE1 = st.integers(1, 6).map(lambda c: ((c,), ()))  # unbatched: (C,) and a 0-d target


def _targets(ignore=None, weight=False):
    """Logits, integer targets (some set to ``ignore``, never all), optional class weights."""

    def gen(shapes, dtype, rng):
        x = rng.standard_normal(shapes[0]).astype(dtype)
        c = shapes[0][1] if len(shapes[0]) > 1 else shapes[0][0]
        t = rng.integers(0, c, shapes[1])
        if ignore is not None and t.size > 1:
            drop = rng.random(t.shape) < 0.4
            drop.flat[0] = False
            t[drop] = ignore
        if ignore is not None and t.size and t.flat[0] == ignore:
            t.flat[0] = 0 if ignore != 0 else c - 1  # never all ignored: the mean would be nan
        out = [x, t]
        if weight:
            out.append(rng.uniform(0.2, 2.0, c).astype(dtype))
        return out

    return gen


def _probs(shapes, dtype, rng):
    x = rng.standard_normal(shapes[0]).astype(dtype)
    p = rng.random(shapes[0])
    return [x, (p / p.sum(axis=1 if len(shapes[0]) > 1 else 0, keepdims=True)).astype(dtype)]


def _probs_w(shapes, dtype, rng):
    x, p = _probs(shapes, dtype, rng)
    c = shapes[0][1] if len(shapes[0]) > 1 else shapes[0][0]
    return [x, p, rng.uniform(0.2, 2.0, c).astype(dtype)]


def _ce(red="mean", **kw):
    return (lambda *a: F.cross_entropy(*a, reduction=red, **kw),
            lambda *a: TF.cross_entropy(*a, reduction=red, **kw))  # fmt: skip


def _ce_w(red="mean", **kw):
    return (lambda x, t, w: F.cross_entropy(x, t, weight=w, reduction=red, **kw),
            lambda x, t, w: TF.cross_entropy(x, t, weight=w, reduction=red, **kw))  # fmt: skip


def _nll(red="mean", weighted=False, **kw):
    if weighted:
        return (lambda x, t, w: F.nll_loss(x, t, weight=w, reduction=red, **kw),
                lambda x, t, w: TF.nll_loss(x, t, weight=w, reduction=red, **kw))  # fmt: skip
    return (lambda x, t: F.nll_loss(x, t, reduction=red, **kw),
            lambda x, t: TF.nll_loss(x, t, reduction=red, **kw))  # fmt: skip


def _kl_inputs(log_target):
    def gen(shapes, dtype, rng):
        x = rng.standard_normal(shapes[0]).astype(dtype)
        t = rng.uniform(0.05, 1.0, shapes[1])
        if log_target:
            t = rng.standard_normal(shapes[1])
        return [x, t.astype(dtype)]

    return gen


def _bce_inputs(n_extra):
    def gen(shapes, dtype, rng):
        x = (3 * rng.standard_normal(shapes[0])).astype(dtype)
        y = rng.random(shapes[1]).astype(dtype)
        return [x, y] + [rng.uniform(0.3, 2.0, s).astype(dtype) for s in shapes[2 : 2 + n_extra]]

    return gen


def _off_kinks(*kinks):
    """Target y and input x = y + d with every d at least 0.05 away from the given kinks."""

    def gen(shapes, dtype, rng):
        y = rng.standard_normal(shapes[1])
        d = away_from(kinks)([shapes[0]], np.float64, rng)[0]
        return [(y + d).astype(dtype), y.astype(dtype)]

    return gen


B2 = broadcast_shapes(2, min_side=1)
SAME2 = one_shape(min_side=0).map(lambda s: (s[0], s[0]))
CE_D = (True, False)
CE_DW = (True, False, False)

CASES = [
    *[Case("cross_entropy", *_ce(r), CE2, gen=_targets(), diff=CE_D, id=f"ce_{r}") for r in REDS],
    *[Case("cross_entropy", *_ce(r), CE4, gen=_targets(), diff=CE_D, id=f"ce4d_{r}") for r in REDS],
    Case("cross_entropy", *_ce(), CE1, gen=_targets(), diff=CE_D, id="ce_unbatched"),
    *[Case("cross_entropy", *_ce_w(r), CE2, gen=_targets(weight=True), diff=CE_DW,
           id=f"ce_weight_{r}") for r in REDS],
    *[Case("cross_entropy", *_ce_w(r, ignore_index=-100), CE4,
           gen=_targets(ignore=-100, weight=True), diff=CE_DW, id=f"ce4d_weight_ignore_{r}")
      for r in REDS],
    Case("cross_entropy", *_ce(ignore_index=1), CE2, gen=_targets(ignore=1), diff=CE_D,
         id="ce_ignore_valid_class"),
    *[Case("cross_entropy", *_ce(r, label_smoothing=0.2), CE2, gen=_targets(ignore=-100),
           diff=CE_D, id=f"ce_smooth_ignore_{r}") for r in REDS],
    *[Case("cross_entropy", *_ce_w(r, label_smoothing=0.3), CE4,
           gen=_targets(ignore=-100, weight=True), diff=CE_DW, id=f"ce4d_smooth_weight_{r}")
      for r in REDS],
    *[Case("cross_entropy", *_ce(r), CE2.map(lambda s: (s[0], s[0])), gen=_probs,
           id=f"ce_probs_{r}", covers=("log_softmax",)) for r in REDS],
    Case("cross_entropy", *_ce_w("mean", label_smoothing=0.1),
         CE4.map(lambda s: (s[0], s[0], s[0])), gen=_probs_w, diff=(True, True, False),
         id="ce4d_probs_weight_smooth", covers=("log_softmax",)),
    *[Case("nll_loss", *_nll(r), CE2, gen=_targets(ignore=-100), diff=CE_D, id=f"nll_{r}")
      for r in REDS],
    *[Case("nll_loss", *_nll(r, weighted=True), CE4, gen=_targets(ignore=-100, weight=True),
           diff=CE_DW, id=f"nll4d_weight_{r}") for r in REDS],
    Case("nll_loss", *_nll(), CE1, gen=_targets(), diff=CE_D, id="nll_unbatched"),
    *[Case("mul", lambda x, y, r=r: F.mse_loss(x, y, r),
           lambda x, y, r=r: TF.mse_loss(x, y, reduction=r), SAME2, id=f"mse_{r}",
           covers=("sub", "mean", "sum")) for r in REDS],
    *[Case("abs", lambda x, y, r=r: F.l1_loss(x, y, r),
           lambda x, y, r=r: TF.l1_loss(x, y, reduction=r), SAME2, id=f"l1_{r}",
           gen=_off_kinks(0.0))
      for r in REDS],
    *[Case("where", lambda x, y, r=r: F.huber_loss(x, y, r, delta=1.0),
           lambda x, y, r=r: TF.huber_loss(x, y, reduction=r, delta=1.0), SAME2,
           gen=_off_kinks(-1.0, 1.0), id=f"huber_{r}") for r in REDS],
    Case("where", lambda x, y: F.huber_loss(x, y, delta=0.5),
         lambda x, y: TF.huber_loss(x, y, delta=0.5), SAME2, gen=_off_kinks(-0.5, 0.5),
         id="huber_delta"),
    Case("mul", F.mse_loss, TF.mse_loss, B2, id="mse_broadcast"),
    *[Case("maximum", lambda x, y, r=r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
           lambda x, y, r=r: TF.binary_cross_entropy_with_logits(x, y, reduction=r), SAME2,
           gen=_bce_inputs(0), id=f"bce_logits_{r}", covers=("exp", "log")) for r in REDS],
    Case("maximum",
         lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw),
         lambda x, y, w, pw: TF.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw),
         one_shape(min_dims=1).map(lambda s: (s[0], s[0], s[0][-1:], s[0][-1:])),
         gen=_bce_inputs(2), diff=(True, True, False, False), id="bce_logits_weights"),
    *[Case("exp", lambda x, t, r=r: F.kl_div(x, t, r, log_target=True),
           lambda x, t, r=r: TF.kl_div(x, t, reduction=r, log_target=True),
           SAME2, gen=_kl_inputs(True), id=f"kl_log_target_{r}") for r in (*REDS, "batchmean")],
    *[Case("log", lambda x, t, r=r: F.kl_div(x, t, r),
           lambda x, t, r=r: TF.kl_div(x, t, reduction=r), SAME2, gen=_kl_inputs(False),
           id=f"kl_{r}") for r in (*REDS, "batchmean")],
]  # fmt: skip
