"""Cases for engine/ops/activation_more.py, each against torch.nn.functional."""

import numpy as np
import torch
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case, fixed, one_shape

TF = torch.nn.functional
U = one_shape(min_side=0)
NC = one_shape(min_dims=2, max_dims=4)  # (N, C, ...): a channel dim for prelu


def _wide(scale, points=(), margin=0.02):
    def gen(shapes, dtype, rng):
        out = []
        for s in shapes:
            x = rng.standard_normal(s) * scale
            for p in points:
                x = np.where(np.abs(x - p) < margin, p + 2 * margin, x)
            out.append(x.astype(dtype))
        return out

    return gen


def _at(*points):
    """Inputs with some elements exactly on ``points`` (kinks where torch's rule decides)."""

    def gen(shapes, dtype, rng):
        x = np.asarray(rng.standard_normal(shapes[0]) * 4)
        pick = rng.integers(0, len(points) + 1, x.shape)
        for i, p in enumerate(points):
            x[pick == i] = p
        return [x.astype(dtype), *[rng.standard_normal(s).astype(dtype) for s in shapes[1:]]]

    return gen


def _prelu_inputs(per_channel):
    def gen(shapes, dtype, rng):
        x = _wide(2, (0.0,))(shapes[:1], dtype, rng)[0]
        c = x.shape[1] if per_channel else 1
        return [x, rng.uniform(-0.5, 0.5, c).astype(dtype)]

    return gen


def _prelu_at_0(shapes, dtype, rng):
    x = _at(0.0)(shapes, dtype, rng)[0]
    return [x, rng.uniform(-0.5, 0.5, x.shape[1]).astype(dtype)]


def _even_last(shapes):
    return shapes.map(lambda s: ((*tuple(s[0][:-1]), 2 * s[0][-1]),))


CASES = [
    Case("logsigmoid", F.logsigmoid, TF.logsigmoid, U, gen=_wide(4)),
    Case("logsigmoid", F.logsigmoid, TF.logsigmoid, U, gen=_wide(60), id="logsigmoid_tails",
         fd=False, tol32=(1e-5, 0), tol64=(1e-12, 0)),
    Case("hardswish", F.hardswish, TF.hardswish, U, gen=_wide(4, (-3.0, 3.0))),
    Case("hardswish", F.hardswish, TF.hardswish, U, gen=_at(-3.0, 3.0, 0.0), fd=False,
         id="hardswish_at_kinks"),
    # NOTE: torch's hardsigmoid backward multiplies by the float32 constant 1.0f / 6.0f even
    # in float64 (3e-8 relative off 1/6); ours divides by 6 exactly, hence tol64.
    Case("hardtanh", F.hardsigmoid, TF.hardsigmoid, U, gen=_wide(4, (-3.0, 3.0)),
         id="hardsigmoid", tol64=(1e-7, 1e-11)),
    Case("hardtanh", F.hardsigmoid, TF.hardsigmoid, U, gen=_at(-3.0, 3.0), fd=False,
         id="hardsigmoid_at_kinks", tol64=(1e-7, 1e-11)),
    Case("elu", F.celu, TF.celu, U, gen=_wide(3, (0.0,)), id="celu"),
    Case("elu", lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5), U,
         gen=_wide(3, (0.0,)), id="celu_alpha"),
    Case("softplus", F.mish, TF.mish, U, gen=_wide(4), id="mish"),
    Case("softplus", F.mish, TF.mish, U, gen=_wide(40), id="mish_tails", fd=False),
    Case("abs", F.softsign, TF.softsign, U, gen=_wide(3, (0.0,)), id="softsign"),
    Case("abs", F.softsign, TF.softsign, U, gen=_at(0.0), fd=False, id="softsign_at_0"),
    Case("softmax", lambda x: F.softmin(x, dim=-1), lambda x: TF.softmin(x, dim=-1),
         one_shape(min_dims=1), id="softmin"),
    Case("softmax", lambda x: F.softmin(x, 0), lambda x: TF.softmin(x, 0),
         one_shape(min_dims=1), id="softmin_dim0"),
    Case("where", F.prelu, TF.prelu, NC, gen=_prelu_inputs(True), id="prelu_per_channel"),
    Case("where", F.prelu, TF.prelu, NC, gen=_prelu_inputs(False), id="prelu_shared"),
    Case("where", F.prelu, TF.prelu, one_shape(min_dims=1, max_dims=1),
         gen=_prelu_inputs(False), id="prelu_1d"),
    Case("where", F.prelu, TF.prelu, fixed((3, 4, 2)), gen=_prelu_at_0, fd=False,
         id="prelu_at_0"),
    Case("sigmoid", F.glu, TF.glu, _even_last(one_shape(min_dims=1)), id="glu"),
    Case("sigmoid", lambda x: F.glu(x, 0), lambda x: TF.glu(x, 0),
         st.tuples(st.integers(1, 3), st.integers(1, 4)).map(lambda r: ((2 * r[0], r[1]),)),
         id="glu_dim0"),
    Case("l2norm", F.normalize, TF.normalize, one_shape(min_dims=2), id="normalize"),
    Case("pnorm", lambda x: F.normalize(x, p=3.0, dim=-1),
         lambda x: TF.normalize(x, p=3.0, dim=-1), one_shape(min_dims=1), id="normalize_p3"),
    Case("l2norm", F.normalize, TF.normalize, fixed((2, 3)),
         gen=lambda s, d, r: [np.array([[0, 0, 0], [1e-14, 0, -2e-14]], d)], fd=False,
         id="normalize_zero_rows"),
]  # fmt: skip
