"""Cases for engine/ops/shape_more.py: flip, roll, diagonals, triangles, windows and the
composites (view, narrow, movedim, rot90, unflatten, meshgrid, broadcast_tensors).

As in cases/shape.py, drawn non-tensor arguments travel as an extra int64 input.
"""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.cases.shape import ARG, ints, with_arg
from tests.engine.harness import Case, fixed, normal


def _shape(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


@st.composite
def dims_args(draw, min_dims=1):
    shape = draw(_shape(min_dims=min_dims))
    n = len(shape)
    dims = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return shape, tuple(d - n * draw(st.booleans()) for d in dims)


@st.composite
def roll_args(draw):
    shape, dims = draw(dims_args())
    shifts = draw(st.lists(st.integers(-6, 6), min_size=len(dims), max_size=len(dims)))
    return shape, (*shifts, *dims)


@st.composite
def roll_flat_args(draw):
    return draw(_shape()), (draw(st.integers(-7, 7)),)


@st.composite
def diagonal_args(draw):
    shape = draw(_shape(min_dims=2, max_side=5))
    n = len(shape)
    d1, d2 = draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=2).filter(
        lambda d: d[0] % n != d[1] % n))  # fmt: skip
    return shape, (draw(st.integers(-5, 5)), d1, d2)


@st.composite
def diag_embed_args(draw):
    shape = draw(_shape(min_dims=1, max_dims=3))
    n = len(shape) + 1
    d1, d2 = draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=2).filter(
        lambda d: d[0] % n != d[1] % n))  # fmt: skip
    return shape, (draw(st.integers(-3, 3)), d1, d2)


@st.composite
def tri_args(draw):
    return draw(_shape(min_dims=2, max_side=5)), (draw(st.integers(-6, 6)),)


@st.composite
def unfold_args(draw):
    shape = draw(_shape(min_dims=1, max_side=6))
    n = len(shape)
    d = draw(st.integers(-n, n - 1))
    return shape, (d, draw(st.integers(0, shape[d])), draw(st.integers(1, 4)))


@st.composite
def narrow_args(draw):
    shape = draw(_shape(min_dims=1, max_side=6))
    n = len(shape)
    d = draw(st.integers(-n, n - 1))
    size = shape[d]
    start = draw(st.integers(0, size))
    length = draw(st.integers(0, size - start))
    return shape, (d, start - size * (draw(st.booleans()) and start < size), length)


@st.composite
def movedim_args(draw):
    shape = draw(_shape(min_dims=1))
    n = len(shape)
    k = draw(st.integers(1, n))
    src = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True))
    return shape, (*src, *dst)


@st.composite
def rot90_args(draw):
    shape = draw(_shape(min_dims=2))
    n = len(shape)
    d = draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=2).filter(
        lambda d: d[0] % n != d[1] % n))  # fmt: skip
    return shape, (draw(st.integers(-5, 5)), *d)


@st.composite
def unflatten_args(draw):
    a, b = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    shape = list(draw(_shape(max_dims=2)))
    i = draw(st.integers(0, len(shape)))
    shape.insert(i, a * b)
    sizes = [a, b]
    if b and draw(st.booleans()):
        sizes[draw(st.integers(0, 1))] = -1
    return tuple(shape), (i - len(shape) * draw(st.booleans()), *sizes)


@st.composite
def view_args(draw):
    shape = draw(_shape(max_side=3))
    size = int(np.prod(shape))
    return shape, draw(st.sampled_from([(size,), (1, size), (size, 1, 1), (-1,)]))


@st.composite
def neg_pad_args(draw, mode):
    shape = draw(_shape(min_dims=2, max_dims=3, min_side=1, max_side=5))
    k = draw(st.integers(1, len(shape) - 1))
    pads = []
    for n in shape[::-1][:k]:
        b = draw(st.integers(-(n - 1), n - 1 if mode == "reflect" else n))
        left = n + min(b, 0)
        top = {"reflect": n - 1, "circular": left + min(0, 0)}.get(mode, n)
        a = draw(st.integers(-(left - 1), top))
        if mode == "circular":
            left = n + min(b, 0) + min(a, 0)
            b = min(b, left)
        pads += [b, a]
    return shape, tuple(pads)


def _pad_case(mode):
    return Case("pad", lambda x, p: F.pad(x, ints(p), mode=mode),
                lambda x, p: torch.nn.functional.pad(x, ints(p), mode=mode), neg_pad_args(mode),
                gen=with_arg, diff=ARG, covers=("getitem",), id=f"pad_negative_{mode}")  # fmt: skip


def _movedim(f):
    def run(x, a):
        a = ints(a)
        k = len(a) // 2
        return f(x, a[:k], a[k:])

    return run


def _roll(f, kw):
    def run(x, a):
        a = ints(a)
        if len(a) == 1:
            return f(x, a[0])
        k = len(a) // 2
        return f(x, a[:k], **{kw: a[k:]})

    return run


def _meshgrid_case(indexing):
    return Case(
        "expand",
        lambda a, b, c: F.meshgrid(a, b, c, indexing=indexing),
        lambda a, b, c: torch.meshgrid(a, b, c, indexing=indexing),
        st.tuples(*[st.integers(0, 4).map(lambda n: (n,)) for _ in range(3)]),
        id=f"meshgrid_{indexing}",
    )


CASES = [
    Case("flip", lambda x, a: F.flip(x, ints(a)), lambda x, a: torch.flip(x, ints(a)),
         dims_args(), gen=with_arg, diff=ARG),
    Case("flip", lambda x: F.fliplr(x), lambda x: torch.fliplr(x),
         _shape(min_dims=2).map(lambda s: (s,)), id="fliplr"),
    Case("flip", lambda x: F.flipud(x), lambda x: torch.flipud(x),
         _shape(min_dims=1).map(lambda s: (s,)), id="flipud"),
    Case("roll", _roll(F.roll, "dims"), _roll(torch.roll, "dims"), roll_args(), gen=with_arg,
         diff=ARG),
    Case("roll", _roll(F.roll, "dims"), _roll(torch.roll, "dims"), roll_flat_args(),
         gen=with_arg, diff=ARG, id="roll_flat"),
    Case("diagonal", lambda x, a: F.diagonal(x, *ints(a)),
         lambda x, a: torch.diagonal(x, *ints(a)), diagonal_args(), gen=with_arg, diff=ARG),
    Case("diag_embed", lambda x, a: F.diag_embed(x, *ints(a)),
         lambda x, a: torch.diag_embed(x, *ints(a)), diag_embed_args(), gen=with_arg, diff=ARG),
    Case("diag_embed", lambda x, a: F.diag(x, *ints(a)), lambda x, a: torch.diag(x, *ints(a)),
         st.tuples(_shape(1, 1, 0, 5), st.integers(-3, 3).map(lambda k: (k,))),
         gen=with_arg, diff=ARG, covers=("diagonal",), id="diag_1d"),
    Case("diagonal", lambda x, a: F.diag(x, *ints(a)), lambda x, a: torch.diag(x, *ints(a)),
         st.tuples(_shape(2, 2, 0, 5), st.integers(-5, 5).map(lambda k: (k,))),
         gen=with_arg, diff=ARG, id="diag_2d"),
    Case("tril", lambda x, a: F.tril(x, *ints(a)), lambda x, a: torch.tril(x, *ints(a)),
         tri_args(), gen=with_arg, diff=ARG),
    Case("triu", lambda x, a: F.triu(x, *ints(a)), lambda x, a: torch.triu(x, *ints(a)),
         tri_args(), gen=with_arg, diff=ARG),
    Case("unfold_dim", lambda x, a: x.unfold(*ints(a)), lambda x, a: x.unfold(*ints(a)),
         unfold_args(), gen=with_arg, diff=ARG),
    Case("getitem", lambda x, a: F.narrow(x, *ints(a)), lambda x, a: torch.narrow(x, *ints(a)),
         narrow_args(), gen=with_arg, diff=ARG, id="narrow"),
    Case("transpose", _movedim(F.movedim), _movedim(torch.movedim), movedim_args(),
         gen=with_arg, diff=ARG, id="movedim"),
    Case("transpose", lambda x, a: F.rot90(x, ints(a)[0], ints(a)[1:]),
         lambda x, a: torch.rot90(x, ints(a)[0], ints(a)[1:]), rot90_args(), gen=with_arg,
         diff=ARG, covers=("flip",), id="rot90"),
    Case("reshape", lambda x, a: F.unflatten(x, ints(a)[0], ints(a)[1:]),
         lambda x, a: torch.unflatten(x, ints(a)[0], ints(a)[1:]), unflatten_args(),
         gen=with_arg, diff=ARG, id="unflatten"),
    # view of a transposed array is torch's error (tests/engine/test_shape_more.py)
    Case("reshape", lambda x, a: F.view(x, ints(a)), lambda x, a: x.view(ints(a)), view_args(),
         gen=with_arg, diff=ARG, noncontig=False, id="view"),
    Case("expand", lambda a, b: F.broadcast_tensors(a, b), lambda a, b: torch.broadcast_tensors(a, b),
         st.tuples(st.just((3, 1)), st.sampled_from([(1, 4), (4,), (2, 3, 4), ()])),
         id="broadcast_tensors"),
    Case("expand", lambda x: F.expand_as(x, np.zeros((2, 3, 4))),
         lambda x: x.expand_as(torch.zeros(2, 3, 4)), fixed((3, 1)), gen=normal,
         id="expand_as"),
    _pad_case("reflect"), _pad_case("replicate"), _pad_case("circular"),
    _meshgrid_case("ij"),
    _meshgrid_case("xy"),
]  # fmt: skip
