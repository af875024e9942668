"""Cases for engine/ops/sort.py: topk, largest or smallest, sorted or in index order.

Inputs are continuous random draws, so there are no ties for torch's order to differ on.
"""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli.engine.ops.sort import topk
from tests.engine.harness import Case


@st.composite
def topk_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, axis, draw(st.integers(0, shape[axis]))


def _gen(shapes, dtype, rng):
    shape, axis, k = shapes
    return [rng.standard_normal(shape).astype(dtype), np.asarray(axis), np.asarray(k)]


def _torch_topk(largest, is_sorted):
    def run(x, a, k):
        v, i = torch.topk(x, int(k.item()), int(a.item()), largest, True)
        if not is_sorted:  # bpcli gives index order then
            i, order = torch.sort(i, int(a.item()))
            v = torch.gather(v, int(a.item()), order)
        return v, i

    return run


CASES = [
    Case(
        "topk",
        lambda x, a, k, lg=largest, so=is_sorted: topk(x, int(k.item()), int(a.item()), lg, so),
        _torch_topk(largest, is_sorted),
        topk_args(),
        gen=_gen,
        diff=(True, False, False),
        id=f"topk[largest={int(largest)},sorted={int(is_sorted)}]",
        max_examples=8,
    )
    for largest in (True, False)
    for is_sorted in (True, False)
]
