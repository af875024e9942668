"""Cases for engine/ops/scatter_more.py: scatter (src or value), scatter_add, scatter_reduce
(every reduction, with and without self; repeated positions, ties and zeros), index_put and the
masked writes."""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case, broadcast_shapes, one_shape


@st.composite
def scatter_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    ishape = [draw(st.integers(1, n)) for n in shape]
    ishape[dim] = draw(st.integers(0, 5))
    return shape, tuple(ishape), dim


def scatter_gen(kind, unique=False):
    def gen(shapes, dtype, rng):
        x, i, d = shapes
        if unique:
            d %= len(x)  # distinct positions along dim: plain scatter's result is then defined
            i = list(i)
            i[d] = min(i[d], x[d])
            idx = np.argsort(rng.random((*i[:d], x[d], *i[d + 1 :])), axis=d)
            idx = np.take(idx, np.arange(i[d]), axis=d)
        else:
            idx = rng.integers(0, x[d], i)
        if kind == "ties":  # small integers: equal extremes and exact zeros
            xs, src = rng.integers(-2, 3, x), rng.integers(-2, 3, idx.shape)
        else:
            xs, src = rng.standard_normal(x), rng.standard_normal(idx.shape)
        return [xs.astype(dtype), idx, src.astype(dtype), np.asarray(shapes[2])]

    return gen


def _sr(reduce, incl):
    return (lambda x, i, s, d: F.scatter_reduce(x, int(d.item()), i, s, reduce, include_self=incl),
            lambda x, i, s, d: torch.scatter_reduce(x, int(d.item()), i, s, reduce,
                                                    include_self=incl))  # fmt: skip


def _index_put_gen(shapes, dtype, rng):
    (x,) = shapes
    rows = rng.integers(-x[0], x[0], 4)
    return [rng.standard_normal(x).astype(dtype), rows,
            rng.standard_normal((4, *x[1:])).astype(dtype)]  # fmt: skip


def _distinct_rows_gen(shapes, dtype, rng):
    x, _, v = _index_put_gen(shapes, dtype, rng)
    return [x, rng.permutation(x.shape[0])[: rng.integers(1, x.shape[0] + 1)], v]


def _mask_gen(shapes, dtype, rng):
    x, m = shapes
    x = np.broadcast_shapes(x, m)
    return [rng.standard_normal(x).astype(dtype), rng.random(m) < 0.5,
            rng.standard_normal(int(np.prod(x)) + 1).astype(dtype)]  # fmt: skip


D = (True, False, True, False)
CASES = [
    *[Case("scatter_reduce", *_sr(r, incl), scatter_args(), gen=scatter_gen(kind), diff=D,
           fd=kind == "normal",
           id=f"scatter_reduce[{r},include_self={int(incl)},{kind}]", max_examples=10)
      for r in ("sum", "prod", "mean", "amax", "amin") for incl in (True, False)
      for kind in ("normal", "ties")],
    Case("scatter_reduce", lambda x, i, s, d: F.scatter(x, int(d.item()), i, s),
         lambda x, i, s, d: torch.scatter(x, int(d.item()), i, s), scatter_args(),
         gen=scatter_gen("normal", unique=True), diff=D, id="scatter[src]"),
    Case("scatter_reduce", lambda x, i, s, d: F.scatter(x, int(d.item()), i, value=2.5),
         lambda x, i, s, d: torch.scatter(x, int(d.item()), i, 2.5), scatter_args(),
         gen=scatter_gen("normal", unique=True), diff=(True, False, False, False),
         id="scatter[value]"),
    Case("scatter_reduce", lambda x, i, s, d: F.scatter(x, int(d.item()), i, s, reduce="add"),
         lambda x, i, s, d: torch.scatter_add(x, int(d.item()), i, s), scatter_args(),
         gen=scatter_gen("normal"), diff=D, id="scatter[reduce=add]"),
    Case("scatter_reduce", lambda x, i, s, d: F.scatter_add(x, int(d.item()), i, s),
         lambda x, i, s, d: torch.scatter_add(x, int(d.item()), i, s), scatter_args(),
         gen=scatter_gen("normal"), diff=D, id="scatter_add"),
    *[Case("index_put", lambda x, i, v, a=acc: F.index_put(x, (i,), v, accumulate=a),
           lambda x, i, v, a=acc: torch.index_put(x, (i,), v, accumulate=a),
           one_shape(1, 3, 1, 4), gen=_index_put_gen, diff=(True, False, True),
           id=f"index_put[accumulate={int(acc)}]")
      for acc in (True,)],  # repeated rows: only accumulate=True has a defined result
    Case("index_put", lambda x, i, v: F.index_put(x, (i,), v[:1]),
         lambda x, i, v: torch.index_put(x, (i,), v[:1]), one_shape(1, 3, 1, 4),
         gen=_distinct_rows_gen, diff=(True, False, True), id="index_put[accumulate=0]"),
    Case("where", lambda x, m, s: F.masked_fill(x, m, -1.5),
         lambda x, m, s: torch.masked_fill(x, m, -1.5), broadcast_shapes(2, 0, 3, 1, 4),
         gen=_mask_gen, diff=(True, False, False), id="masked_fill"),
    Case("where", lambda x, m, s: F.masked_fill(x, m, s[0]),
         lambda x, m, s: torch.masked_fill(x, m, s[0]), broadcast_shapes(2, 0, 3, 1, 4),
         gen=_mask_gen, diff=(True, False, True), id="masked_fill[tensor value]",
         covers=("getitem",)),
    Case("masked_scatter", F.masked_scatter, torch.masked_scatter,
         broadcast_shapes(2, 0, 3, 1, 4), gen=_mask_gen, diff=(True, False, True)),
]  # fmt: skip
