"""Cases for engine/ops/select.py: masked_select (gradient), take and take_along_dim
(composites of index_select/gather), and the integer results of nonzero, bucketize,
searchsorted and one_hot (forward only)."""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case, broadcast_shapes, one_shape


def _mask_gen(shapes, dtype, rng):
    x, m = shapes
    return [rng.standard_normal(x).astype(dtype), rng.random(m) < 0.5]


def _take_gen(shapes, dtype, rng):
    (x,) = shapes
    n = int(np.prod(x))
    return [rng.standard_normal(x).astype(dtype), rng.integers(-n, n, (2, 3))]


@st.composite
def along_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    # indices broadcast against x off dim: each other dim is 1 or x's size (or x's is 1)
    ishape = [draw(st.sampled_from([1, n])) for n in shape]
    ishape[dim] = draw(st.integers(0, 5))
    return shape, tuple(ishape), dim


def _along_gen(shapes, dtype, rng):
    x, i, d = shapes
    return [rng.standard_normal(x).astype(dtype), rng.integers(0, x[d], i), np.asarray(d)]


def _bucket_gen(shapes, dtype, rng):
    (x,) = shapes
    b = np.sort(rng.integers(-3, 4, 5)).astype(dtype)  # repeated boundaries too
    return [rng.integers(-4, 5, x).astype(dtype), b]


@st.composite
def sorted_args(draw):
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    return lead, draw(st.integers(1, 5)), draw(st.integers(0, 4))


def _sorted_gen(shapes, dtype, rng):
    lead, n, m = shapes
    seq = np.sort(rng.integers(-3, 4, (*lead, n)), -1).astype(dtype)
    return [seq, rng.integers(-4, 5, (*lead, m)).astype(dtype)]


def _one_hot_gen(shapes, dtype, rng):
    return [rng.integers(0, 4, shapes[0]).astype(np.int64)]


NOGRAD = {"fd": False, "noncontig": False}
CASES = [
    Case("masked_select", F.masked_select, torch.masked_select, broadcast_shapes(2, 0, 3, 0, 4),
         gen=_mask_gen, diff=(True, False)),
    Case("index_select", F.take, torch.take, one_shape(0, 3, 1, 4), gen=_take_gen,
         diff=(True, False), id="take"),
    Case("gather", lambda x, i, d: F.take_along_dim(x, i, int(d.item())),
         lambda x, i, d: torch.take_along_dim(x, i, int(d.item())), along_args(), gen=_along_gen,
         diff=(True, False, False), id="take_along_dim", covers=("expand",)),
    Case("index_select", lambda x, i, d: F.take_along_dim(x, i),
         lambda x, i, d: torch.take_along_dim(x, i), along_args(), gen=_along_gen,
         diff=(True, False, False), id="take_along_dim[dim=None]"),
    Case("nonzero", F.nonzero, torch.nonzero, one_shape(0, 3, 0, 4), gen=_one_hot_gen,
         **NOGRAD),
    Case("nonzero", lambda x: F.nonzero(x, as_tuple=True),
         lambda x: torch.nonzero(x, as_tuple=True), one_shape(0, 3, 0, 4), gen=_one_hot_gen,
         id="nonzero[as_tuple]", **NOGRAD),
    Case("nonzero", lambda x: F.where(F.gt(x, 1)), lambda x: torch.where(x > 1),
         one_shape(0, 3, 0, 4), gen=_one_hot_gen, id="where[condition only]", **NOGRAD),
    *[Case("bucketize", lambda x, b, r=right: F.bucketize(x, b, right=r),
           lambda x, b, r=right: torch.bucketize(x, b, right=r), one_shape(0, 3, 0, 4),
           gen=_bucket_gen, diff=(False, False), id=f"bucketize[right={int(right)}]", **NOGRAD)
      for right in (False, True)],
    *[Case("searchsorted", lambda s, v, sd=side: F.searchsorted(s, v, side=sd),
           lambda s, v, sd=side: torch.searchsorted(s, v, side=sd), sorted_args(),
           gen=_sorted_gen, diff=(False, False), id=f"searchsorted[{side}]", **NOGRAD)
      for side in ("left", "right")],
    Case("one_hot", lambda x: F.one_hot(x, 5), lambda x: torch.nn.functional.one_hot(x, 5),
         one_shape(0, 3, 0, 4), gen=_one_hot_gen, **NOGRAD),
    Case("one_hot", F.one_hot, torch.nn.functional.one_hot, one_shape(0, 3, 1, 4),
         gen=_one_hot_gen, id="one_hot[-1]", **NOGRAD),
]  # fmt: skip
