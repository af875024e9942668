"""Cases for engine/ops/conv.py: fixed configs plus hypothesis-drawn ones.

A drawn config travels as a last int64 input (no gradient), so the bpcli and torch callables
read it from their arguments and no module state is shared between examples.
"""

import numpy as np
import torch.nn.functional as TF
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case, fixed

TOL = dict(tol32=(1e-4, 1e-4), tol64=(1e-9, 1e-10))


def _ints(t):
    return [int(v) for v in t.numpy().tolist()]


def _with_cfg(shapes, dtype, rng):
    *float_shapes, cfg = shapes
    return [rng.standard_normal(s).astype(dtype) for s in float_shapes] + [np.array(cfg, np.int64)]


@st.composite
def conv_config(draw, transposed=False):
    """Shapes of x, weight, bias and the config (stride, pad, dilation, groups, same/out-pad)."""
    g = draw(st.integers(1, 4))
    cin, cout = g * draw(st.integers(1, 4 // g)), g * draw(st.integers(1, 4 // g))
    n = draw(st.integers(1, 3))
    k = [draw(st.integers(1, 3)) for _ in range(2)]
    d = [draw(st.integers(1, 2)) for _ in range(2)]
    same = not transposed and draw(st.booleans()) and draw(st.booleans())
    s = [1, 1] if same else [draw(st.integers(1, 3)) for _ in range(2)]
    p = [draw(st.integers(0, 2)) for _ in range(2)]
    if transposed:
        hw = [draw(st.integers(1, 5)) for _ in range(2)]
        op = [draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d, strict=True)]
        # keep the output non-empty: the padding may not eat it all
        p = [
            min(pi, ((h - 1) * si + di * (ki - 1) + oi) // 2)
            for pi, h, si, di, ki, oi in zip(p, hw, s, d, k, op, strict=True)
        ]
        cfg = (*s, *p, *op, g, *d)
        return (n, cin, *hw), (cin, cout // g, *k), (cout,), cfg
    pad = [0, 0] if same else p
    lo = [max(1, di * (ki - 1) + 1 - 2 * pi) for di, ki, pi in zip(d, k, pad, strict=True)]
    hw = [draw(st.integers(lo_i, 9)) for lo_i in lo]
    cfg = (*s, *p, *d, g, int(same))
    return (n, cin, *hw), (cout, cin // g, *k), (cout,), cfg


def _conv_kw(cfg):
    sh, sw, ph, pw, dh, dw, g, same = _ints(cfg)
    return dict(stride=(sh, sw), padding="same" if same else (ph, pw), dilation=(dh, dw), groups=g)


def _convt_kw(cfg):
    sh, sw, ph, pw, oph, opw, g, dh, dw = _ints(cfg)
    return dict(
        stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw), groups=g, dilation=(dh, dw)
    )


@st.composite
def conv1d_config(draw):
    g = draw(st.integers(1, 2))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k, d, s, p = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(0, 2)),
    )
    length = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9))
    return (draw(st.integers(1, 3)), cin, length), (cout, cin // g, k), (cout,), (s, p, d, g)


def _c1_kw(cfg):
    s, p, d, g = _ints(cfg)
    return dict(stride=s, padding=p, dilation=d, groups=g)


CASES = [
    Case(
        "conv2d",
        lambda x, w: F.conv2d(x, w),
        lambda x, w: TF.conv2d(x, w),
        fixed((2, 3, 6, 5), (4, 3, 3, 2)),
        id="conv2d_plain",
        **TOL,
    ),
    Case(
        "conv2d",
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1),
        fixed((2, 1, 7, 7), (3, 1, 3, 3), (3,)),
        id="conv2d_stride_pad_bias",
        **TOL,
    ),
    Case(
        "conv2d",
        lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)),
        lambda x, w: TF.conv2d(x, w, padding="same", dilation=(1, 2)),
        fixed((1, 2, 5, 6), (2, 2, 2, 4)),
        id="conv2d_same_asym",
        **TOL,
    ),
    Case(
        "conv2d",
        lambda x, w: F.conv2d(x, w, padding=1),
        lambda x, w: TF.conv2d(x, w, padding=1),
        fixed((0, 2, 4, 4), (3, 2, 3, 3)),
        id="conv2d_empty_batch",
        fd=False,
        **TOL,
    ),
    Case(
        "conv2d",
        lambda x, w, b, c: F.conv2d(x, w, b, **_conv_kw(c)),
        lambda x, w, b, c: TF.conv2d(x, w, b, **_conv_kw(c)),
        conv_config(),
        gen=_with_cfg,
        id="conv2d_drawn",
        noncontig=True,
        **TOL,
    ),
    Case(
        "conv1d",
        lambda x, w, b, c: F.conv1d(x, w, b, **_c1_kw(c)),
        lambda x, w, b, c: TF.conv1d(x, w, b, **_c1_kw(c)),
        conv1d_config(),
        gen=_with_cfg,
        id="conv1d_drawn",
        **TOL,
    ),
    Case(
        "conv_transpose2d",
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        fixed((2, 3, 4, 3), (3, 2, 3, 3), (2,)),
        id="conv_transpose2d_fixed",
        **TOL,
    ),
    Case(
        "conv_transpose2d",
        lambda x, w, b, c: F.conv_transpose2d(x, w, b, **_convt_kw(c)),
        lambda x, w, b, c: TF.conv_transpose2d(x, w, b, **_convt_kw(c)),
        conv_config(transposed=True),
        gen=_with_cfg,
        id="conv_transpose2d_drawn",
        **TOL,
    ),
]
