"""Cases for engine/ops/math.py and engine/ops/math_binary.py."""

import numpy as np
import torch

from bpcli import functional as F
from tests.engine.harness import Case, away_from, broadcast_shapes, one_shape, positive

U = one_shape(min_side=0)
B2 = broadcast_shapes(2, min_side=0)


def uniform(lo, hi):
    def gen(shapes, dtype, rng):
        return [rng.uniform(lo, hi, s).astype(dtype) for s in shapes]

    return gen


def _off_grid(step=0.5, scale=3.0, margin=0.02):
    """Inputs kept `margin` away from multiples of `step`, where rounding jumps (finite
    differences across a jump would be huge, and float32 vs float64 could round apart)."""

    def gen(shapes, dtype, rng):
        out = []
        for s in shapes:
            x = rng.standard_normal(s) * scale
            r = np.remainder(x, step)
            x = np.where(r < margin, x + margin, np.where(r > step - margin, x - margin, x))
            out.append(x.astype(dtype))
        return out

    return gen


def _nonzero(shapes, dtype, rng):
    """Values of |x| in [0.5, 2] with random signs (divisors, copysign's sign source)."""
    return [(rng.uniform(0.5, 2.0, s) * rng.choice([-1, 1], s)).astype(dtype) for s in shapes]


def _dividend_divisor(shapes, dtype, rng):
    """a, b with a / b kept off the integers, where fmod/remainder/rounded quotients jump."""
    b = rng.uniform(0.5, 2.0, shapes[1]) * rng.choice([-1, 1], shapes[1])
    q = rng.standard_normal(shapes[0]) * 3
    f = np.remainder(q, 1.0)
    q = np.where(f < 0.05, q + 0.1, np.where(f > 0.95, q - 0.1, q))
    return [(q * b).astype(dtype), b.astype(dtype)]


def _lerp_inputs(shapes, dtype, rng):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    w = rng.uniform(-0.5, 1.5, shapes[2])
    return [a.astype(dtype), b.astype(dtype), w.astype(dtype)]


def _unary(name, gen=None, **kw):
    return Case(name, getattr(F, name), getattr(torch, name), U, gen=gen, **kw)


def _rounding(name, **kw):
    return _unary(name, gen=_off_grid(), **kw)


CASES = [
    _unary("tan", uniform(-1.3, 1.3), tol32=(2e-4, 1e-5)),
    _unary("asin", uniform(-0.9, 0.9)),
    _unary("acos", uniform(-0.9, 0.9)),
    _unary("atan"),
    _unary("sinh"),
    _unary("cosh"),
    _unary("asinh"),
    _unary("acosh", uniform(1.2, 3.0)),
    _unary("atanh", uniform(-0.9, 0.9)),
    _unary("log2", positive()),
    _unary("log10", positive()),
    _unary("log1p", uniform(-0.7, 2.0)),
    Case("log1p", F.log1p, torch.log1p, U, gen=uniform(-1e-6, 1e-6), id="log1p_tiny",
         tol32=(1e-6, 0), tol64=(1e-14, 0)),
    _unary("expm1"),
    Case("expm1", F.expm1, torch.expm1, U, gen=uniform(-1e-6, 1e-6), id="expm1_tiny",
         tol32=(1e-6, 0), tol64=(1e-14, 0)),
    _unary("exp2"),
    _unary("reciprocal", _nonzero),
    Case("mul", F.square, torch.square, U, id="square"),
    _rounding("sign"),
    Case("sign", F.sign, torch.sign, U, gen=lambda s, d, r: [np.zeros(s[0], d)], fd=False,
         id="sign_at_0"),
    _rounding("floor"),
    _rounding("ceil"),
    _rounding("trunc"),
    _rounding("round"),
    Case("round", lambda x: F.round(x, decimals=2), lambda x: torch.round(x, decimals=2), U,
         gen=_off_grid(0.005, 1.0, 2e-4), id="round_decimals"),
    Case("round", lambda x: F.round(x, decimals=-1), lambda x: torch.round(x, decimals=-1), U,
         gen=_off_grid(5.0, 30.0, 0.1), id="round_negative_decimals"),
    _rounding("frac"),
    Case("atan2", F.atan2, torch.atan2, B2, gen=away_from()),
    Case("copysign", F.copysign, torch.copysign, B2, gen=_nonzero),
    Case("logaddexp", F.logaddexp, torch.logaddexp, B2),
    Case("logaddexp", F.logaddexp, torch.logaddexp, B2, id="logaddexp_far",
         gen=lambda s, d, r: [(r.standard_normal(x) * 40).astype(d) for x in s]),
    Case("hypot", F.hypot, torch.hypot, B2, gen=away_from()),
    Case("fmod", F.fmod, torch.fmod, B2, gen=_dividend_divisor),
    Case("remainder", F.remainder, torch.remainder, B2, gen=_dividend_divisor),
    Case("remainder", lambda a, b: a % b, lambda a, b: a % b, B2, gen=_dividend_divisor,
         id="mod_operator"),
    Case("remainder", lambda a: 2.5 % a, lambda a: torch.full_like(a, 2.5) % a, U, gen=_nonzero,
         id="rmod_operator", fd=False),
    Case("rounded_div", lambda a, b: F.div(a, b, rounding_mode="trunc"),
         lambda a, b: torch.div(a, b, rounding_mode="trunc"), B2, gen=_dividend_divisor,
         id="div_trunc"),
    Case("rounded_div", lambda a, b: F.div(a, b, rounding_mode="floor"),
         lambda a, b: torch.div(a, b, rounding_mode="floor"), B2, gen=_dividend_divisor,
         id="div_floor"),
    Case("rounded_div", lambda a, b: a // b, lambda a, b: torch.div(a, b, rounding_mode="floor"),
         B2, gen=_dividend_divisor, id="floordiv_operator"),
    Case("div", lambda a, b: F.div(a, b, rounding_mode=None), torch.div, B2, gen=_nonzero,
         id="div_true"),
    Case("lerp", F.lerp, torch.lerp, broadcast_shapes(3), gen=_lerp_inputs),
    Case("lerp", lambda a, b: F.lerp(a, b, 0.7), lambda a, b: torch.lerp(a, b, 0.7), B2,
         id="lerp_scalar_weight"),
]  # fmt: skip
