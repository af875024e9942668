"""Cases for engine/ops/index.py.

Indices travel as extra integer/bool inputs (no gradient). Basic indices (slices with negative
steps, None, Ellipsis, ints) are drawn by hypothesis and encoded as int rows; torch has no
negative steps, so its oracle gathers through the flat positions numpy's index selects.
"""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case

NONE = -(2**40)
KINDS = {"int": 0, "slice": 1, "new": 2, "ellipsis": 3}


def _encode(index) -> np.ndarray:
    rows = []
    for it in index if isinstance(index, tuple) else (index,):
        if it is None:
            rows.append((2, 0, 0, 0))
        elif it is Ellipsis:
            rows.append((3, 0, 0, 0))
        elif isinstance(it, slice):
            rows.append((1, *(NONE if v is None else v for v in (it.start, it.stop, it.step))))
        else:
            rows.append((0, int(it), 0, 0))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def _decode(code) -> tuple:
    out = []
    for kind, a, b, c in np.asarray(code).tolist():
        if kind == 0:
            out.append(a)
        elif kind == 1:
            out.append(slice(*(None if v == NONE else v for v in (a, b, c))))
        else:
            out.append(None if kind == 2 else Ellipsis)
    return tuple(out)


@st.composite
def basic_index_args(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return shape, _encode(index)


def basic_gen(shapes, dtype, rng):
    return [rng.standard_normal(shapes[0]).astype(dtype), shapes[1]]


def _torch_basic(x, code):
    flat = np.arange(x.numel()).reshape(tuple(x.shape))[_decode(code.numpy())]
    return x.reshape(-1)[torch.as_tensor(np.array(flat, copy=True))]


@st.composite
def int_index_args(draw, n_index=1, min_dims=1):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    ishape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5))
    return (shape, *[ishape] * n_index)


def int_gen(axes):
    """gen: x, then one random int index (negatives and repeats) per axis in ``axes``."""

    def gen(shapes, dtype, rng):
        x = rng.standard_normal(shapes[0]).astype(dtype)
        n = [shapes[0][a] for a in axes]
        return [x] + [rng.integers(-k, k, size=s) for k, s in zip(n, shapes[1:], strict=False)]

    return gen


@st.composite
def mask_args(draw, full=True):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    k = len(shape) if full else draw(st.integers(1, len(shape)))
    return shape, shape[:k]


def mask_gen(shapes, dtype, rng):
    return [rng.standard_normal(shapes[0]).astype(dtype), rng.random(shapes[1]) > 0.4]


@st.composite
def gather_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    ishape = tuple(
        draw(st.integers(0, n if d != axis % len(shape) else 5)) for d, n in enumerate(shape)
    )
    return shape, ishape, axis


def gather_gen(shapes, dtype, rng):
    shape, ishape, axis = shapes
    x = rng.standard_normal(shape).astype(dtype)
    return [x, rng.integers(0, shape[axis], size=ishape), np.asarray(axis)]


@st.composite
def select_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, (draw(st.integers(0, 6)),), axis


def select_gen(shapes, dtype, rng):
    shape, ishape, axis = shapes
    x = rng.standard_normal(shape).astype(dtype)
    return [x, rng.integers(0, shape[axis], size=ishape), np.asarray(axis)]


I2 = (True, False)
I3 = (True, False, False)

CASES = [
    Case(
        "getitem",
        lambda x, c: x[_decode(c.numpy())],
        _torch_basic,
        basic_index_args(),
        gen=basic_gen,
        diff=I2,
        id="getitem_basic",
        max_examples=30,
    ),
    Case(
        "getitem",
        lambda x, i: x[i],
        lambda x, i: x[i],
        int_index_args(),
        gen=int_gen([0]),
        diff=I2,
        id="getitem_int_array",
    ),
    Case(
        "getitem",
        lambda x, i: x[i.numpy().tolist()],
        lambda x, i: x[i],
        st.just(((4, 3), (6,))),
        gen=lambda s, d, r: [r.standard_normal(s[0]).astype(d), np.array([1, 1, -1, 0, 1, 3])],
        diff=I2,
        id="getitem_list_repeats",
    ),
    Case(
        "getitem",
        lambda x, i, j: x[i, :, j],
        lambda x, i, j: x[i, :, j],
        int_index_args(2, min_dims=3),
        gen=int_gen([0, 2]),
        diff=I3,
        id="getitem_split_arrays",
    ),
    Case(
        "getitem",
        lambda x, i, j: x[None, 1:, i, j],
        lambda x, i, j: x[None, 1:, i, j],
        int_index_args(2, min_dims=3),
        gen=int_gen([1, 2]),
        diff=I3,
        id="getitem_mixed",
    ),
    Case(
        "getitem",
        lambda x, i: x[..., i],
        lambda x, i: x[..., i],
        int_index_args(),
        gen=int_gen([-1]),
        diff=I2,
        id="getitem_last_axis",
    ),
    Case(
        "getitem",
        lambda x, m: x[m],
        lambda x, m: x[m],
        mask_args(),
        gen=mask_gen,
        diff=I2,
        id="getitem_mask",
    ),
    Case(
        "getitem",
        lambda x, m: x[m],
        lambda x, m: x[m],
        mask_args(full=False),
        gen=mask_gen,
        diff=I2,
        id="getitem_mask_leading",
    ),
    Case(
        "getitem",
        lambda x, m: x[m.numpy()],
        lambda x, m: x[m],
        mask_args(),
        gen=mask_gen,
        diff=I2,
        id="getitem_numpy_mask",
    ),
    Case(
        "gather",
        lambda x, i, a: x.gather(int(a.item()), i),
        lambda x, i, a: torch.gather(x, int(a.item()), i),
        gather_args(),
        gen=gather_gen,
        diff=I3,
    ),
    Case(
        "index_select",
        lambda x, i, a: F.index_select(x, int(a.item()), i),
        lambda x, i, a: torch.index_select(x, int(a.item()), i),
        select_args(),
        gen=select_gen,
        diff=I3,
    ),
]
