"""Cases for engine/ops/pool.py: fixed configs plus hypothesis-drawn ones.

A drawn config travels as a last int64 input (no gradient). Max-pool inputs are distinct
values (no ties), so the gradient is defined and finite differences agree.
"""

import numpy as np
import torch.nn.functional as TF
from hypothesis import assume
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case, fixed, normal

TOL = dict(tol32=(1e-4, 1e-4), tol64=(1e-9, 1e-10))


def _ints(t):
    return [int(v) for v in t.numpy().tolist()]


def _distinct(shape, dtype, rng):
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 0.05 - size * 0.025).astype(dtype)


def _distinct_inputs(shapes, dtype, rng):
    return [_distinct(shapes[0], dtype, rng)]


def _with_cfg(distinct):
    def gen(shapes, dtype, rng):
        x = (
            _distinct(shapes[0], dtype, rng)
            if distinct
            else rng.standard_normal(shapes[0]).astype(dtype)
        )
        return [x, np.array(shapes[1], np.int64)]

    return gen


def _out(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil else 0)) // s + 1
    return o - 1 if ceil and (o - 1) * s >= n + p else o


def _windows_hit_input(n, k, s, p, d, ceil):
    # every window must hold at least one input element (torch's -inf edge case is undefined)
    return all(
        any(0 <= o * s - p + t * d < n for t in range(k)) for o in range(_out(n, k, s, p, d, ceil))
    )


@st.composite
def pool_config(draw, nd=2, dilation=True):
    """Shape of x and the config: kernel, stride, pad, dilation (per axis), ceil, count_pad."""
    ks = [draw(st.integers(1, 3)) for _ in range(nd)]
    ss = [draw(st.integers(1, 3)) for _ in range(nd)]
    ps = [draw(st.integers(0, k // 2)) for k in ks]
    ds = [draw(st.integers(1, 2)) if dilation else 1 for _ in range(nd)]
    ceil = draw(st.booleans())
    lows = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(ks, ps, ds, strict=True)]
    sizes = [draw(st.integers(lo, 9)) for lo in lows]
    assume(all(_windows_hit_input(*a, ceil) for a in zip(sizes, ks, ss, ps, ds, strict=True)))
    x_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), *sizes)
    return x_shape, (*ks, *ss, *ps, *ds, int(ceil), int(draw(st.booleans())))


def _split(cfg, nd):
    v = _ints(cfg)
    ks, ss, ps, ds = (tuple(v[i * nd : (i + 1) * nd]) for i in range(4))
    return ks, ss, ps, ds, bool(v[4 * nd]), bool(v[4 * nd + 1])


def _max_kw(cfg, nd):
    ks, ss, ps, ds, ceil, _ = _split(cfg, nd)
    return dict(kernel_size=ks, stride=ss, padding=ps, dilation=ds, ceil_mode=ceil)


def _avg_kw(cfg, nd):
    ks, ss, ps, _, ceil, cip = _split(cfg, nd)
    return dict(kernel_size=ks, stride=ss, padding=ps, ceil_mode=ceil, count_include_pad=cip)


X = fixed((2, 3, 8, 8))
CASES = [
    Case(
        "max_pool2d",
        lambda x: F.max_pool2d(x, 2),
        lambda x: TF.max_pool2d(x, 2),
        X,
        gen=_distinct_inputs,
        id="max_pool2d_2x2",
        **TOL,
    ),
    Case(
        "max_pool2d",
        lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: TF.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        fixed((1, 2, 7, 6)),
        gen=_distinct_inputs,
        id="max_pool2d_ceil",
        **TOL,
    ),
    Case(
        "max_pool2d",
        lambda x, c: F.max_pool2d(x, **_max_kw(c, 2)),
        lambda x, c: TF.max_pool2d(x, **_max_kw(c, 2)),
        pool_config(2),
        gen=_with_cfg(True),
        id="max_pool2d_drawn",
        **TOL,
    ),
    Case(
        "max_pool1d",
        lambda x, c: F.max_pool1d(x, **_max_kw(c, 1)),
        lambda x, c: TF.max_pool1d(x, **_max_kw(c, 1)),
        pool_config(1),
        gen=_with_cfg(True),
        id="max_pool1d_drawn",
        **TOL,
    ),
    Case(
        "avg_pool2d",
        lambda x: F.avg_pool2d(x, 2),
        lambda x: TF.avg_pool2d(x, 2),
        X,
        id="avg_pool2d_2x2",
        **TOL,
    ),
    Case(
        "avg_pool2d",
        lambda x, c: F.avg_pool2d(x, **_avg_kw(c, 2)),
        lambda x, c: TF.avg_pool2d(x, **_avg_kw(c, 2)),
        pool_config(2, dilation=False),
        gen=_with_cfg(False),
        id="avg_pool2d_drawn",
        **TOL,
    ),
    Case(
        "avg_pool1d",
        lambda x, c: F.avg_pool1d(x, **_avg_kw(c, 1)),
        lambda x, c: TF.avg_pool1d(x, **_avg_kw(c, 1)),
        pool_config(1, dilation=False),
        gen=_with_cfg(False),
        id="avg_pool1d_drawn",
        **TOL,
    ),
    Case(
        "adaptive_avg_pool2d",
        lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
        lambda x: TF.adaptive_avg_pool2d(x, (3, 4)),
        fixed((2, 3, 7, 9)),
        gen=normal,
        id="adaptive_avg_pool2d_uneven",
        **TOL,
    ),
    Case(
        "adaptive_avg_pool2d",
        lambda x: F.adaptive_avg_pool2d(x, (2, None)),
        lambda x: TF.adaptive_avg_pool2d(x, (2, None)),
        fixed((1, 2, 6, 5)),
        covers=("avg_pool2d",),
        id="adaptive_avg_pool2d_as_avg_pool",
        **TOL,
    ),
    Case(
        "global_avg_pool2d",
        F.global_avg_pool2d,
        lambda x: x.mean((2, 3), keepdim=True),
        fixed((2, 3, 4, 5)),
        **TOL,
    ),
    Case(
        "global_avg_pool2d",
        lambda x: F.adaptive_avg_pool2d(x, 1),
        lambda x: TF.adaptive_avg_pool2d(x, 1),
        fixed((2, 3, 4, 5)),
        id="adaptive_to_global",
        **TOL,
    ),
]
