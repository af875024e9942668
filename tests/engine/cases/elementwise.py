"""Cases for engine/ops/elementwise.py."""

import numpy as np
import torch

from bpcli import functional as F
from tests.engine.harness import Case, away_from, broadcast_shapes, one_shape, positive


def _pos_second(shapes, dtype, rng):
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.uniform(0.5, 2.0, shapes[1]).astype(dtype) * rng.choice([-1, 1], shapes[1])
    return [a, b.astype(dtype)]


def _pow_inputs(shapes, dtype, rng):
    return [
        rng.uniform(0.5, 2.0, shapes[0]).astype(dtype),
        rng.uniform(-2, 2, shapes[1]).astype(dtype),
    ]


def _where_inputs(shapes, dtype, rng):
    return [
        rng.random(shapes[0]) > 0.5,
        rng.standard_normal(shapes[1]).astype(dtype),
        rng.standard_normal(shapes[2]).astype(dtype),
    ]


B2 = broadcast_shapes(2, min_side=0)
U = one_shape(min_side=0)

CASES = [
    Case("add", F.add, torch.add, B2),
    Case("sub", F.sub, torch.sub, B2),
    Case("mul", F.mul, torch.mul, B2),
    Case("div", F.div, torch.div, B2, gen=_pos_second),
    Case("pow", F.pow, torch.pow, B2, gen=_pow_inputs, tol32=(2e-4, 1e-5)),
    Case("maximum", F.maximum, torch.maximum, B2),
    Case("minimum", F.minimum, torch.minimum, B2),
    Case(
        "where",
        F.where,
        torch.where,
        broadcast_shapes(3),
        gen=_where_inputs,
        diff=(False, True, True),
    ),
    Case("neg", F.neg, torch.neg, U),
    Case("abs", F.abs, torch.abs, U, gen=away_from()),
    Case("exp", F.exp, torch.exp, U),
    Case("log", F.log, torch.log, U, gen=positive()),
    Case("sqrt", F.sqrt, torch.sqrt, U, gen=positive()),
    Case("rsqrt", F.rsqrt, torch.rsqrt, U, gen=positive()),
    Case("sin", F.sin, torch.sin, U),
    Case("cos", F.cos, torch.cos, U),
    Case("tanh", F.tanh, torch.tanh, U),
    Case("sigmoid", F.sigmoid, torch.sigmoid, U),
    Case("relu", F.relu, torch.relu, U, gen=away_from()),
    Case(
        "cast",
        lambda x: F.astype(x, np.float64 if x.dtype == np.float32 else np.float32),
        lambda x: x.to(torch.float64 if x.dtype == torch.float32 else torch.float32),
        U,
        fd_eps=1e-2,
        fd_tol=(1e-3, 1e-3),
        tol64=(1e-6, 1e-7),
    ),
    Case("clone", F.clone, torch.clone, U),
    Case(
        "scalar_ops",
        lambda x: (2.0 - x) * 3 / (x * x + 1) + x**2,
        lambda x: (2.0 - x) * 3 / (x * x + 1) + x**2,
        U,
        covers=("add", "sub", "mul", "div", "pow"),
    ),
]
