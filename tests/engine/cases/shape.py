"""Cases for engine/ops/shape.py.

Non-tensor arguments (shapes, axes, pads) are drawn with the input shape and passed as an
extra int64 input (no gradient), so one case covers many argument values.
"""

import math

import numpy as np
import torch
import torch.nn.functional as TF
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case

ARG = (True, False)  # one float input with a gradient, then the int argument


def _shape(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def with_arg(shapes, dtype, rng):
    """gen: a normal float array of shapes[0] and the drawn argument shapes[1] as int64."""
    return [rng.standard_normal(shapes[0]).astype(dtype), np.asarray(shapes[1], dtype=np.int64)]


def ints(t) -> tuple:
    return tuple(int(v) for v in t.tolist())


@st.composite
def reshape_args(draw):
    shape = draw(_shape(max_side=3))
    size = math.prod(shape)
    dims = list(shape)
    draw(st.randoms()).shuffle(dims)
    target = draw(st.sampled_from([tuple(dims), (size,), (1, size, 1), shape[::-1]]))
    if size and target and draw(st.booleans()):
        i = draw(st.integers(0, len(target) - 1))
        target = (*target[:i], -1, *target[i + 1 :])
    return shape, target


@st.composite
def flatten_args(draw):
    shape = draw(_shape(min_dims=1))
    s = draw(st.integers(-len(shape), len(shape) - 1))
    e = draw(st.integers(s % len(shape), len(shape) - 1))
    return shape, (s, e - len(shape) * draw(st.booleans()))


@st.composite
def perm_args(draw):
    shape = draw(_shape())
    return shape, tuple(draw(st.permutations(range(len(shape)))))


@st.composite
def two_axes(draw):
    shape = draw(_shape(min_dims=1))
    n = len(shape)
    return shape, (draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1)))


@st.composite
def squeeze_args(draw):
    shape = list(draw(_shape(max_dims=3)))
    i = draw(st.integers(0, len(shape)))
    shape.insert(i, 1)
    return tuple(shape), (i - len(shape) * draw(st.booleans()),)


@st.composite
def unsqueeze_args(draw):
    shape = draw(_shape(max_dims=3))
    return shape, (draw(st.integers(-len(shape) - 1, len(shape))),)


@st.composite
def expand_args(draw):
    target = draw(_shape(min_dims=1))
    lead = draw(st.integers(0, len(target)))
    shape, arg = [], list(target)
    for i, n in enumerate(target[lead:], start=lead):
        if draw(st.booleans()):
            shape.append(1)
        else:
            shape.append(n)
            if draw(st.booleans()):
                arg[i] = -1
    return tuple(shape), tuple(arg)


@st.composite
def join_args(draw, new_axis=False):
    base = list(draw(_shape(min_dims=1, max_dims=3)))
    n = len(base)
    axis = draw(st.integers(-n - new_axis, n - 1 + new_axis))
    shapes = []
    for _ in range(3):
        s = list(base)
        if not new_axis:
            s[axis] = draw(st.integers(0, 3))
        shapes.append(tuple(s))
    return (*shapes, (axis,))


def join_gen(shapes, dtype, rng):
    return [rng.standard_normal(s).astype(dtype) for s in shapes[:-1]] + [np.asarray(shapes[-1])]


@st.composite
def split_args(draw, sections=False):
    shape = draw(_shape(min_dims=1, max_side=6))
    n = len(shape)
    axis = draw(st.integers(-n, n - 1))
    size = shape[axis]
    if not sections:
        return shape, (axis, draw(st.integers(1, 7)))
    cuts = sorted(draw(st.lists(st.integers(0, size), min_size=0, max_size=3)))
    sizes = np.diff([0, *cuts, size]).tolist()
    return shape, (axis, *sizes)


@st.composite
def pad_args(draw, mode):
    k = draw(st.integers(1, 3)) if mode != "constant" else draw(st.integers(0, 3))
    min_dims = max(k, 1) if mode == "constant" else k + 1
    lo = 1 if mode != "constant" else 0
    shape = draw(_shape(min_dims=min_dims, max_dims=min_dims + 1, min_side=lo))
    if mode == "constant":
        k = min(k, len(shape))
    pads = []
    for n in shape[::-1][:k]:
        top = {"reflect": n - 1, "circular": n}.get(mode, 3)
        low = -n // 2 if mode == "constant" else 0
        pads += [draw(st.integers(low, top)), draw(st.integers(low, top))]
    return shape, tuple(pads)


@st.composite
def repeat_args(draw, counts=False, flat=False):
    shape = draw(_shape(min_dims=0 if flat else 1, max_dims=3))
    if flat:
        return shape, (draw(st.integers(0, 3)),)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    if counts:
        return shape, (
            axis,
            *draw(st.lists(st.integers(0, 3), min_size=shape[axis], max_size=shape[axis])),
        )
    return shape, (axis, draw(st.integers(0, 3)))


@st.composite
def tile_args(draw):
    shape = draw(_shape(max_dims=3))
    return shape, tuple(draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))


def _split_bp(x, a):
    axis, *sizes = ints(a)
    return F.split(x, sizes if len(sizes) != 1 else sizes[0], axis=axis)


def _split_torch(x, a):
    axis, *sizes = ints(a)
    return torch.split(x, sizes if len(sizes) != 1 else sizes[0], dim=axis)


def _pad_case(mode):
    return Case(
        "pad",
        lambda x, p: F.pad(x, ints(p), mode=mode, value=0.5 if mode == "constant" else None),
        lambda x, p: TF.pad(x, ints(p), mode=mode, value=0.5 if mode == "constant" else None),
        pad_args(mode),
        gen=with_arg,
        diff=ARG,
        id=f"pad_{mode}",
    )


def _rep_torch(x, a):
    axis, *r = ints(a)
    return torch.repeat_interleave(
        x, torch.tensor(r, dtype=torch.long) if len(r) != 1 else r[0], dim=axis
    )


def _rep_bp(x, a):
    axis, *r = ints(a)
    return F.repeat_interleave(x, r if len(r) != 1 else r[0], dim=axis)


J = (True, True, True, False)

CASES = [
    Case(
        "reshape",
        lambda x, s: F.reshape(x, ints(s)),
        lambda x, s: torch.reshape(x, ints(s)),
        reshape_args(),
        gen=with_arg,
        diff=ARG,
    ),
    Case(
        "reshape",
        lambda x, a: F.flatten(x, *ints(a)),
        lambda x, a: torch.flatten(x, *ints(a)),
        flatten_args(),
        gen=with_arg,
        diff=ARG,
        id="flatten",
    ),
    Case(
        "transpose",
        lambda x, p: x.permute(*ints(p)),
        lambda x, p: x.permute(ints(p)),
        perm_args(),
        gen=with_arg,
        diff=ARG,
    ),
    Case(
        "transpose",
        lambda x, p: x.T,
        lambda x, p: x.permute(tuple(reversed(range(x.ndim)))),
        perm_args(),
        gen=with_arg,
        diff=ARG,
        id="transpose_T",
    ),
    Case(
        "transpose",
        lambda x, a: F.swapaxes(x, *ints(a)),
        lambda x, a: torch.swapaxes(x, *ints(a)),
        two_axes(),
        gen=with_arg,
        diff=ARG,
        id="swapaxes",
    ),
    Case(
        "squeeze",
        lambda x, a: F.squeeze(x, ints(a)[0]),
        lambda x, a: torch.squeeze(x, ints(a)[0]),
        squeeze_args(),
        gen=with_arg,
        diff=ARG,
    ),
    Case(
        "squeeze",
        lambda x, a: F.squeeze(x),
        lambda x, a: torch.squeeze(x),
        squeeze_args(),
        gen=with_arg,
        diff=ARG,
        id="squeeze_all",
    ),
    Case(
        "unsqueeze",
        lambda x, a: x.unsqueeze(ints(a)[0]),
        lambda x, a: x.unsqueeze(ints(a)[0]),
        unsqueeze_args(),
        gen=with_arg,
        diff=ARG,
    ),
    Case(
        "expand",
        lambda x, s: x.expand(*ints(s)),
        lambda x, s: x.expand(*ints(s)),
        expand_args(),
        gen=with_arg,
        diff=ARG,
    ),
    Case(
        "concat",
        lambda a, b, c, ax: F.concat([a, b, c], axis=ints(ax)[0]),
        lambda a, b, c, ax: torch.cat([a, b, c], dim=ints(ax)[0]),
        join_args(),
        gen=join_gen,
        diff=J,
    ),
    Case(
        "stack",
        lambda a, b, c, ax: F.stack([a, b, c], axis=ints(ax)[0]),
        lambda a, b, c, ax: torch.stack([a, b, c], dim=ints(ax)[0]),
        join_args(new_axis=True),
        gen=join_gen,
        diff=J,
    ),
    Case("split", _split_bp, _split_torch, split_args(), gen=with_arg, diff=ARG),
    Case(
        "split",
        _split_bp,
        _split_torch,
        split_args(sections=True),
        gen=with_arg,
        diff=ARG,
        id="split_sections",
    ),
    Case(
        "split",
        lambda x, a: F.chunk(x, ints(a)[1], axis=ints(a)[0]),
        lambda x, a: torch.chunk(x, ints(a)[1], dim=ints(a)[0]),
        split_args(),
        gen=with_arg,
        diff=ARG,
        id="chunk",
    ),
    Case(
        "split",
        lambda x, a: F.chunk(x, 3, axis=-1)[1] * 2,
        lambda x, a: torch.chunk(x, 3, dim=-1)[1] * 2,
        st.tuples(st.just((2, 6)), st.just(())),
        gen=with_arg,
        diff=ARG,
        id="chunk_one_used",
        covers=("mul",),
    ),
    _pad_case("constant"),
    _pad_case("reflect"),
    _pad_case("replicate"),
    _pad_case("circular"),
    Case("repeat", _rep_bp, _rep_torch, repeat_args(), gen=with_arg, diff=ARG),
    Case(
        "repeat",
        _rep_bp,
        _rep_torch,
        repeat_args(counts=True),
        gen=with_arg,
        diff=ARG,
        id="repeat_counts",
    ),
    Case(
        "repeat",
        lambda x, a: F.repeat_interleave(x, ints(a)[0]),
        lambda x, a: torch.repeat_interleave(x, ints(a)[0]),
        repeat_args(flat=True),
        gen=with_arg,
        diff=ARG,
        id="repeat_flat",
    ),
    Case(
        "tile",
        lambda x, r: F.tile(x, ints(r)),
        lambda x, r: torch.tile(x, ints(r)),
        tile_args(),
        gen=with_arg,
        diff=ARG,
    ),
]
