"""Cases for engine/ops/scan_more.py: cummax/cummin (ties and nan follow torch's index rule) and
logcumsumexp, along every dim, 0-d and empty tensors included."""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case


@st.composite
def dim_args(draw, min_side=0):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=min_side, max_side=5))
    n = len(shape) or 1
    return shape, draw(st.integers(-n, n - 1))


def gen(kind):
    def make(shapes, dtype, rng):
        shape, dim = shapes
        if kind == "ties":
            x = rng.integers(-2, 3, shape).astype(float)
        elif kind == "nan":
            x = rng.integers(-2, 3, shape).astype(float)
            x[rng.random(shape) < 0.2] = np.nan
        elif kind == "wide":  # exp would overflow: the scan must stay in log space
            x = rng.standard_normal(shape) * 40
        else:
            x = rng.standard_normal(shape)
        return [np.asarray(x, dtype), np.asarray(dim)]

    return make


def _cases(op, bp_fn, torch_fn, kinds):
    return [
        Case(op, lambda x, d: bp_fn(x, int(d.item())), lambda x, d: torch_fn(x, int(d.item())),
             dim_args(), gen=gen(kind), diff=(True, False), fd=kind in ("normal", "wide"),
             id=f"{op}[{kind}]", max_examples=10)
        for kind in kinds
    ]  # fmt: skip


CASES = [
    *_cases("cummax", F.cummax, torch.cummax, ("normal", "ties", "nan")),
    *_cases("cummin", F.cummin, torch.cummin, ("normal", "ties", "nan")),
    *_cases("logcumsumexp", F.logcumsumexp, torch.logcumsumexp, ("normal", "wide")),
]
