"""Cases for engine/ops/reduce_more.py: std, prod (with exact zeros), nansum/nanmean (with nans),
and the boolean/count reductions (forward only), over several dim/keepdim settings."""

import numpy as np
import torch

from bpcli import functional as F
from tests.engine.cases.reduce import AXES, _dims, _zero_slices, family

ONE_DIM = [(None, False, 0), (None, True, 0), (0, False, 1), (-1, True, 1), (1, False, 2)]


def _with_nans(shapes, dtype, rng):
    x = rng.standard_normal(shapes[0])
    x[rng.random(x.shape) < 0.3] = np.nan
    return [np.asarray(x, dtype)]


def _with_nans_not_all(shapes, dtype, rng):
    x = _with_nans(shapes, dtype, rng)[0]
    if x.size:
        x.flat[0] = 1.5
    return [x]


def _some_zeros(shapes, dtype, rng):
    x = rng.standard_normal(shapes[0])
    x[rng.random(x.shape) < 0.4] = 0
    return [np.asarray(x, dtype)]


def _torch_prod(x, a, k):
    if a == tuple(range(x.ndim)) and not k:
        return torch.prod(x)
    if a == tuple(range(x.ndim)):  # torch.prod has one dim only: reduce them one by one
        for d in range(x.ndim):
            x = torch.prod(x, d, keepdim=True)
        return x
    return torch.prod(x, a, keepdim=k)


NOGRAD = {"gen": _some_zeros, "fd": False, "diff": (False,)}
CASES = [
    *family("std", lambda x, a, k: F.std(x, a, keepdim=k),
            lambda x, a, k: torch.std(x, a, keepdim=k), min_side=2, min_dims=1),
    *family("std", lambda x, a, k: F.std(x, a, correction=0, keepdim=k),
            lambda x, a, k: torch.std(x, a, correction=0, keepdim=k), min_side=1,
            tag="[correction=0]", gen=lambda s, d, r: [r.standard_normal(s[0]).astype(d) + 1]),
    *family("std", lambda x, a, k: F.std_mean(x, a, keepdim=k),
            lambda x, a, k: torch.std_mean(x, a, keepdim=k), min_side=2, min_dims=1, tag="_mean",
            covers=("mean",)),
    *family("var", lambda x, a, k: F.var_mean(x, a, keepdim=k),
            lambda x, a, k: torch.var_mean(x, a, keepdim=k), min_side=2, min_dims=1, tag="_mean",
            covers=("mean",)),
    *family("prod", lambda x, a, k: F.prod(x, a, k), _torch_prod, min_side=0, cases=ONE_DIM,
            gen=_some_zeros),
    *family("prod", lambda x, a, k: F.prod(x, a, k), _torch_prod, cases=ONE_DIM[2:4],
            gen=_zero_slices, tag="[zero slices]"),
    *family("nansum", lambda x, a, k: F.nansum(x, a, k),
            lambda x, a, k: torch.nansum(x, a, keepdim=k), gen=_with_nans),
    # an all-nan slice has a nan mean and gradient (as torch): no finite differences there
    *family("nanmean", lambda x, a, k: F.nanmean(x, a, k),
            lambda x, a, k: torch.nanmean(x, a, keepdim=k), gen=_with_nans, fd=False),
    *family("nanmean", lambda x, a, k: F.nanmean(x, a, k),
            lambda x, a, k: torch.nanmean(x, a, keepdim=k), gen=_with_nans_not_all,
            cases=AXES[:2], tag="[some finite]"),
    *family("any", lambda x, a, k: F.any(x, a, k),
            lambda x, a, k: torch.any(x, _dims(a, x.ndim), keepdim=k), **NOGRAD, min_side=0),
    *family("all", lambda x, a, k: F.all(x, a, k),
            lambda x, a, k: torch.all(x, _dims(a, x.ndim), keepdim=k), **NOGRAD, min_side=0),
    *family("count_nonzero", lambda x, a, k: F.count_nonzero(x, a),
            lambda x, a, k: torch.count_nonzero(x, _dims(a, x.ndim)), **NOGRAD, cases=AXES[::2],
            min_side=0),
]  # fmt: skip
