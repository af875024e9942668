"""Cases for engine/ops/scan.py: cumsum and cumprod, inclusive/exclusive, either direction.

torch has no exclusive or reverse scan: its oracle flips and shifts around torch.cumsum/cumprod.
Products get exact zeros, where the gradient must not divide by them.
"""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli.engine.ops.scan import cumprod, cumsum
from tests.engine.harness import Case


@st.composite
def scan_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def _gen(zeros: bool):
    def gen(shapes, dtype, rng):
        shape, axis = shapes
        x = rng.standard_normal(shape)
        if zeros:
            x[rng.random(shape) < 0.25] = 0
        return [x.astype(dtype), np.asarray(axis)]

    return gen


def _torch_scan(fn, fill, exclusive, reverse):
    def run(x, a):
        axis = int(a.item()) % x.ndim
        x = x.flip(axis) if reverse else x
        y = fn(x, axis)
        if exclusive:
            n = y.shape[axis]
            first = torch.full_like(y.narrow(axis, 0, min(n, 1)), fill)
            y = torch.cat([first, y.narrow(axis, 0, max(n - 1, 0))], axis)
        return y.flip(axis) if reverse else y

    return run


def _cases(op, fn, torch_fn, fill, zeros):
    out = []
    for exclusive in (False, True):
        for reverse in (False, True):
            out.append(Case(
                op,
                lambda x, a, e=exclusive, r=reverse: fn(x, int(a.item()), e, r),
                _torch_scan(torch_fn, fill, exclusive, reverse),
                scan_args(),
                gen=_gen(zeros),
                diff=(True, False),
                id=f"{op}[exclusive={int(exclusive)},reverse={int(reverse)}]",
                max_examples=8,
            ))  # fmt: skip
    return out


CASES = [
    *_cases("cumsum", cumsum, torch.cumsum, 0.0, False),
    *_cases("cumprod", cumprod, torch.cumprod, 1.0, True),
]
