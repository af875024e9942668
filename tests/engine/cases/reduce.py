"""Cases for engine/ops/reduce.py: every reduction over several axis/keepdims settings."""

import numpy as np
import torch

from bpcli import functional as F
from tests.engine.harness import Case, fixed, one_shape

# (axis, keepdims, fewest dims the axis needs)
AXES = [
    (None, False, 0),
    (None, True, 0),
    (0, False, 1),
    (-1, True, 1),
    ((0, -1), False, 2),
    ((1, -1), True, 3),
]


def _dims(axis, ndim):
    """torch's dim for our axis (torch reads dim=() as 'all', which we only pass for 0-d)."""
    return tuple(range(ndim)) if axis is None else axis


def _ties(shapes, dtype, rng):
    return [rng.integers(-2, 3, s).astype(dtype) for s in shapes]


def _zero_slices(shapes, dtype, rng):
    """Some exact zeros and some all-zero rows: the gradient there must be 0, not nan."""
    x = np.asarray(rng.standard_normal(shapes[0]))
    x[np.asarray(rng.random(x.shape)) < 0.3] = 0
    if x.ndim >= 1 and x.shape[0] > 1:
        x[0] = 0
    return [x.astype(dtype)]


def family(op, bp_fn, torch_fn, *, min_side=1, min_dims=0, cases=AXES, tag="", **kw):
    """One case per (axis, keepdims) setting; ``bp_fn(x, axis, keepdims)``."""
    out = []
    for axis, keepdims, nd in cases:
        nd = max(nd, min_dims)
        out.append(Case(
            op,
            lambda x, a=axis, k=keepdims: bp_fn(x, a, k),
            lambda x, a=axis, k=keepdims: torch_fn(x, _dims(a, x.ndim), k),
            one_shape(min_dims=nd, max_dims=4, min_side=min_side, max_side=4),
            id=f"{op}{tag}[axis={axis},keepdims={keepdims}]",
            **kw,
        ))  # fmt: skip
    return out


NORM_OPS = {2: ("l2norm", ()), 1: ("sum", ("abs",)), np.inf: ("max", ("abs",)),
            -np.inf: ("min", ("abs",))}  # fmt: skip


def _norm_case(order, tag="", **kw):
    op, covers = NORM_OPS.get(order, ("pnorm", ()))
    return family(
        op,
        lambda x, a, k: F.norm(x, order, axis=a, keepdims=k),
        lambda x, d, k: torch.linalg.vector_norm(x, order, dim=d, keepdim=k),
        cases=AXES[::2], tag=f"_norm{order}{tag}", covers=covers, **kw,
    )  # fmt: skip


def _torch_arg(fn):
    return lambda x, d, k: fn(x, None if isinstance(d, tuple) else d, k)


CASES = [
    *family("sum", F.sum, lambda x, d, k: torch.sum(x, d, keepdim=k), min_side=0),
    *family("mean", F.mean, lambda x, d, k: torch.mean(x, d, keepdim=k), min_side=0),
    *family("var", lambda x, a, k: F.var(x, a, keepdims=k),
            lambda x, d, k: torch.var(x, d, keepdim=k), min_side=2, min_dims=1),
    *family("var", lambda x, a, k: F.var(x, a, correction=0, keepdims=k),
            lambda x, d, k: torch.var(x, d, correction=0, keepdim=k), cases=AXES[::2],
            min_dims=1, tag="_c0"),
    *family("var", lambda x, a, k: F.var(x, dim=a, unbiased=True, keepdim=k),
            lambda x, d, k: torch.var(x, d, correction=1, keepdim=k), min_side=3,
            cases=AXES[1:3], min_dims=1, tag="_unbiased"),
    *family("max", F.amax, lambda x, d, k: torch.amax(x, d, keepdim=k)),
    *family("min", F.amin, lambda x, d, k: torch.amin(x, d, keepdim=k)),
    *family("max", F.amax, lambda x, d, k: torch.amax(x, d, keepdim=k), gen=_ties, fd=False,
            tag="_ties", cases=AXES[::2]),
    *family("min", F.amin, lambda x, d, k: torch.amin(x, d, keepdim=k), gen=_ties, fd=False,
            tag="_ties", cases=AXES[::2]),
    *family("logsumexp", F.logsumexp, lambda x, d, k: torch.logsumexp(x, d, keepdim=k),
            min_side=0),
    *_norm_case(2),
    *_norm_case(1),
    *_norm_case(np.inf),
    *_norm_case(-np.inf),
    *_norm_case(3),
    *_norm_case(0.5, tol32=(2e-4, 1e-5)),
    *_norm_case(2, gen=_zero_slices, fd=False, tag="_zeros"),
    *_norm_case(3, gen=_zero_slices, fd=False, tag="_zeros"),
    *_norm_case(1.5, gen=_zero_slices, fd=False, tag="_zeros"),
    *_norm_case(np.inf, gen=_zero_slices, fd=False, tag="_zeros"),
    *family("argmax", F.argmax, _torch_arg(torch.argmax),
            cases=[(None, False, 0), (0, True, 1), (-1, False, 1)], diff=(False,), fd=False),
    *family("argmin", F.argmin, _torch_arg(torch.argmin),
            cases=[(None, False, 0), (0, True, 1), (-1, False, 1)], diff=(False,), fd=False),
    Case("logsumexp", lambda x: F.logsumexp(x * 100, axis=-1),
         lambda x: torch.logsumexp(x * 100, -1), one_shape(1, 3), id="logsumexp_large",
         covers=("mul",), fd_tol=(1e-4, 1e-6)),
    Case("sum", lambda x: x.sum(dim=-1, keepdim=True).mean() + x.var() + x.amax(0).sum(),
         lambda x: x.sum(-1, keepdim=True).mean() + x.var() + x.amax(0).sum(),
         fixed((3, 4)), covers=("mean", "var", "max"), id="reduce_methods"),
]  # fmt: skip
