"""Cases for engine/ops/einsum.py, linalg_more.py, linalg_norm.py and embedding_bag.py."""

import numpy as np
import torch
from hypothesis import strategies as st

import bpcli as bp
from bpcli import functional as F
from tests.engine.harness import Case, fixed

TF = torch.nn.functional
D = st.integers(1, 4)
D0 = st.integers(0, 3)


def _ein(eq):
    return lambda *xs: F.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs)


EINSUMS = [
    ("ij,jk->ik", st.tuples(D0, D, D0).map(lambda r: ((r[0], r[1]), (r[1], r[2])))),
    ("ij,jk", st.tuples(D, D, D).map(lambda r: ((r[0], r[1]), (r[1], r[2])))),  # implicit
    ("...ij,...jk", fixed((2, 1, 2, 3), (4, 3, 5))),  # broadcast ellipsis
    ("bij,bjk->bik", st.tuples(D, D, D, D).map(lambda r: ((r[0], r[1], r[2]), (r[0], r[2], r[3])))),
    ("ij,ij->ij", fixed((2, 3), (1, 3))),  # a size-1 letter broadcasts, as torch
    ("ii->i", fixed((3, 3))),
    ("ii", fixed((4, 4))),
    ("iij->j", fixed((3, 3, 2))),
    ("i j , j k", fixed((2, 3), (3, 4))),  # spaces
    ("ij->", st.tuples(D0, D0).map(lambda r: (r,))),
    ("i...->...", fixed((2, 3, 4))),
    ("b...i->b...", fixed((2, 3, 4))),
    ("...", fixed((2, 3))),
    ("bn,anm,bm->ba", fixed((2, 3), (4, 3, 5), (2, 5))),  # three operands
    ("i,j->ji", fixed((3,), (4,))),
    ("aBc,c", fixed((2, 3, 4), (4,))),  # ASCII order of the implicit output
    ("iji,j->j", fixed((3, 2, 3), (2,))),
]


def _mats(shapes, dtype, rng):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# matrices with well-separated singular values: the spectral norm's gradient is smooth there
def _well_conditioned(shapes, dtype, rng):
    out = []
    for s in shapes:
        u, _ = np.linalg.qr(rng.standard_normal((*s[:-2], s[-2], s[-2])))
        v, _ = np.linalg.qr(rng.standard_normal((*s[:-2], s[-1], s[-1])))
        k = min(s[-2:])
        sv = np.zeros((*s[:-2], s[-2], s[-1]))
        idx = np.arange(k)
        sv[..., idx, idx] = 1.0 + 0.7 * idx[::-1] + rng.uniform(0, 0.2, (*s[:-2], k))
        out.append((u @ sv @ v).astype(dtype))
    return out


MAT = st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(1, 4)).map(
    lambda r: (((r[0],) if r[0] else ()) + (r[1], r[2]),)
)


def _mnorm(ord_, dim=(-2, -1), keepdim=False):
    return (
        lambda a: bp.linalg.matrix_norm(a, ord_, dim, keepdim),
        lambda a: torch.linalg.matrix_norm(a, ord_, dim, keepdim),
    )


def _bag_inputs(pad=False, psw=False, two_d=False):
    def gen(shapes, dtype, rng):
        (v, d), n = shapes
        w = rng.standard_normal((v, d)).astype(dtype)
        if two_d:
            idx = rng.integers(0, v, (3, n))
        else:
            idx = rng.integers(0, v, n)
        if pad:
            idx.flat[::2] = 1
        out = [w, idx]
        if psw:
            out.append(rng.uniform(0.5, 2, idx.shape).astype(dtype))
        return out

    return gen


BAG = st.tuples(st.integers(2, 5), st.integers(1, 3), st.integers(0, 7)).map(
    lambda r: ((r[0], r[1]), r[2])
)
BAG2 = BAG.map(lambda s: (s[0], max(s[1], 1)))


def _offsets(n):
    # bags [0, n//3), [n//3, n//3) (empty), [n//3, n)
    return np.array([0, n // 3, n // 3], np.int64)


def _bag(mode, **kw):
    def bpf(w, i, *p):
        return F.embedding_bag(
            i, w, _offsets(i.shape[0]), mode=mode, per_sample_weights=p[0] if p else None, **kw
        )

    def tf(w, i, *p):
        return TF.embedding_bag(
            i,
            w,
            torch.tensor(_offsets(i.shape[0])),
            mode=mode,
            per_sample_weights=p[0] if p else None,
            **kw,
        )

    return bpf, tf


def _bag2(mode, **kw):
    def bpf(w, i, *p):
        return F.embedding_bag(i, w, mode=mode, per_sample_weights=p[0] if p else None, **kw)

    def tf(w, i, *p):
        return TF.embedding_bag(i, w, mode=mode, per_sample_weights=p[0] if p else None, **kw)

    return bpf, tf


NORM_TOL = dict(tol32=(2e-4, 2e-5), tol64=(1e-8, 1e-10))
BILIN = st.tuples(st.integers(0, 3), D, D, D).map(
    lambda r: (
        ((r[0],) if r[0] else ()) + (r[1],),
        ((r[0],) if r[0] else ()) + (r[2],),
        (r[3], r[1], r[2]),
        (r[3],),
    )
)

CASES = [
    *[Case("einsum", *_ein(eq), shapes, id=f"einsum[{eq}]") for eq, shapes in EINSUMS],
    Case("matmul", F.mm, torch.mm, st.tuples(D0, D, D0).map(lambda r: ((r[0], r[1]),
                                                                      (r[1], r[2]))), id="mm"),
    Case("matmul", lambda a, b: a.bmm(b), torch.bmm,
         st.tuples(D0, D, D, D).map(lambda r: ((r[0], r[1], r[2]), (r[0], r[2], r[3]))),
         id="bmm"),
    Case("matmul", F.mv, torch.mv, st.tuples(D0, D).map(lambda r: ((r[0], r[1]), (r[1],))),
         id="mv"),
    Case("matmul", F.dot, torch.dot, D0.map(lambda n: ((n,), (n,))), id="dot"),
    Case("matmul", lambda a, b: a.vdot(b), torch.vdot, D.map(lambda n: ((n,), (n,))),
         id="vdot"),
    Case("mul", F.outer, torch.outer, st.tuples(D0, D0).map(lambda r: ((r[0],), (r[1],))),
         id="outer", covers=("reshape",)),
    Case("matmul", lambda i, a, b: F.addmm(i, a, b, beta=0.5, alpha=-2.0),
         lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=-2.0),
         fixed((1, 4), (3, 2), (2, 4)), id="addmm", covers=("add", "mul")),
    Case("matmul", lambda i, a, b: i.addmm(a, b), lambda i, a, b: i.addmm(a, b),
         fixed((3, 4), (3, 2), (2, 4)), id="addmm_default"),
    Case("matmul", lambda i, a, v: F.addmv(i, a, v, beta=2, alpha=0.5),
         lambda i, a, v: torch.addmv(i, a, v, beta=2, alpha=0.5),
         fixed((3,), (3, 2), (2,)), id="addmv"),
    Case("matmul", lambda i, a, b: F.baddbmm(i, a, b, beta=-1.0, alpha=3.0),
         lambda i, a, b: torch.baddbmm(i, a, b, beta=-1.0, alpha=3.0),
         fixed((2, 1, 4), (2, 3, 2), (2, 2, 4)), id="baddbmm"),
    Case("index_select", lambda a, b: F.cross(a, b, dim=1), lambda a, b: torch.cross(a, b, 1),
         fixed((2, 3, 4), (2, 3, 4)), id="cross", covers=("sub",)),
    Case("index_select", lambda a, b: bp.linalg.cross(a, b),
         lambda a, b: torch.linalg.cross(a, b), fixed((1, 4, 3), (2, 1, 3)), id="linalg_cross"),
    Case("index_select", lambda a, b: a.cross(b), lambda a, b: torch.cross(a, b, dim=0),
         fixed((3, 2), (3, 2)), id="cross_first_dim_of_3"),
    Case("einsum", F.bilinear, TF.bilinear, BILIN, id="bilinear", covers=("add",)),
    Case("einsum", lambda a, b, w: F.bilinear(a, b, w), lambda a, b, w: TF.bilinear(a, b, w),
         BILIN.map(lambda s: s[:3]), id="bilinear_no_bias"),
    Case("svdvals", bp.linalg.svdvals, torch.linalg.svdvals, MAT, gen=_well_conditioned,
         **NORM_TOL),
    Case("l2norm", *_mnorm("fro"), MAT, id="matrix_norm_fro"),
    Case("svdvals", *_mnorm("nuc"), MAT, gen=_well_conditioned, id="matrix_norm_nuc",
         covers=("sum",), **NORM_TOL),
    Case("svdvals", *_mnorm(2, keepdim=True), MAT, gen=_well_conditioned, id="matrix_norm_2",
         covers=("max",), **NORM_TOL),
    Case("svdvals", *_mnorm(-2, (0, -1)), MAT, gen=_well_conditioned, id="matrix_norm_-2",
         covers=("min",), **NORM_TOL),
    Case("max", *_mnorm(1), MAT, id="matrix_norm_1", covers=("abs",)),
    Case("min", *_mnorm(-1, (-1, -2), True), MAT, id="matrix_norm_-1"),
    Case("max", *_mnorm(np.inf), MAT, id="matrix_norm_inf"),
    Case("min", *_mnorm(-np.inf, (-1, 0)), MAT, id="matrix_norm_-inf"),
    Case("l2norm", lambda a: bp.linalg.norm(a), lambda a: torch.linalg.norm(a), MAT,
         id="linalg_norm"),
    Case("pnorm", lambda a: bp.linalg.vector_norm(a, 3, dim=-1, keepdim=True),
         lambda a: torch.linalg.vector_norm(a, 3, dim=-1, keepdim=True), MAT,
         id="vector_norm_3"),
    Case("max", lambda a: bp.linalg.norm(a, np.inf, dim=0),
         lambda a: torch.linalg.norm(a, np.inf, dim=0), MAT, id="linalg_norm_vector_inf"),
    Case("embedding_bag", *_bag("sum"), BAG, gen=_bag_inputs(), diff=(True, False)),
    Case("embedding_bag", *_bag("mean"), BAG, gen=_bag_inputs(), diff=(True, False),
         id="embedding_bag_mean"),
    Case("embedding_bag", *_bag("max"), BAG, gen=_bag_inputs(), diff=(True, False),
         id="embedding_bag_max"),
    Case("embedding_bag", *_bag("sum"), BAG, gen=_bag_inputs(psw=True),
         diff=(True, False, True), id="embedding_bag_per_sample_weights"),
    Case("embedding_bag", *_bag("mean", padding_idx=1), BAG, gen=_bag_inputs(pad=True),
         diff=(True, False), id="embedding_bag_mean_padding"),  # padding entries are left out of the forward too
    Case("embedding_bag", *_bag("max", padding_idx=1), BAG, gen=_bag_inputs(pad=True),
         diff=(True, False), id="embedding_bag_max_padding"),
    Case("embedding_bag", *_bag("sum", padding_idx=-1), BAG, gen=_bag_inputs(pad=True, psw=True),
         diff=(True, False, True), id="embedding_bag_sum_padding_psw"),
    Case("embedding_bag", *_bag2("mean"), BAG2, gen=_bag_inputs(two_d=True), diff=(True, False),
         id="embedding_bag_2d"),
    Case("embedding_bag", *_bag2("max"), BAG2, gen=_bag_inputs(two_d=True), diff=(True, False),
         id="embedding_bag_2d_max"),
    Case("embedding_bag", *_bag2("sum", padding_idx=1), BAG2,
         gen=_bag_inputs(pad=True, psw=True, two_d=True), diff=(True, False, True),
         id="embedding_bag_2d_psw_padding"),
]  # fmt: skip
