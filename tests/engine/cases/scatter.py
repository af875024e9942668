"""Cases for engine/ops/scatter.py: index_add with repeated positions (they accumulate)."""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli.engine.ops.scatter import index_add
from tests.engine.harness import Case


@st.composite
def index_add_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, draw(st.integers(0, 6)), axis


def index_add_gen(shapes, dtype, rng):
    shape, k, axis = shapes
    n = shape[axis]
    src_shape = list(shape)
    src_shape[axis] = k
    x = rng.standard_normal(shape).astype(dtype)
    src = rng.standard_normal(src_shape).astype(dtype)
    return [x, rng.integers(0, n, size=k), src, np.asarray(axis)]


CASES = [
    Case(
        "index_add",
        lambda x, i, s, a: index_add(x, int(a.item()), i, s),
        lambda x, i, s, a: torch.index_add(x, int(a.item()), i, s),
        index_add_args(),
        gen=index_add_gen,
        diff=(True, False, True, False),
    ),
    Case(
        "index_add",
        lambda x, i, s: index_add(x, 0, i, s),
        lambda x, i, s: torch.index_add(x, 0, i % 3, s),
        st.just(((3, 2),)),
        gen=lambda sh, d, r: [
            r.standard_normal((3, 2)).astype(d),
            np.array([2, -1, 0, 2, 2]),
            r.standard_normal((5, 2)).astype(d),
        ],
        diff=(True, False, True),
        id="index_add_negative_repeats",
    ),
]
