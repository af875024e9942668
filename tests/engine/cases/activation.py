"""Cases for engine/ops/activation.py."""

import numpy as np
import torch
import torch.nn.functional as TF

from bpcli import functional as F
from tests.engine.harness import Case, away_from, one_shape

U = one_shape(min_side=0)


def _wide(scale):
    """Normal inputs times ``scale`` (reaches the saturated tails of erf/gelu/softplus)."""

    def gen(shapes, dtype, rng):
        return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]

    return gen


def _on_bounds(lo, hi):
    """Inputs with some elements exactly at the clip bounds, where torch's rule decides."""

    def gen(shapes, dtype, rng):
        x = np.asarray(rng.standard_normal(shapes[0]) * 2)
        pick = rng.random(x.shape)
        x[pick < 0.15] = lo
        x[pick > 0.85] = hi
        return [x.astype(dtype)]

    return gen


CASES = [
    Case("leaky_relu", F.leaky_relu, TF.leaky_relu, U, gen=away_from()),
    Case("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), U,
         gen=_on_bounds(0.0, 0.0), fd=False, id="leaky_relu_at_0"),
    Case("elu", F.elu, TF.elu, U, gen=_wide(3)),
    Case("elu", lambda x: F.elu(x, alpha=0.5), lambda x: TF.elu(x, alpha=0.5), U,
         gen=away_from(), id="elu_alpha"),
    Case("selu", F.selu, TF.selu, U, gen=away_from()),
    Case("gelu", F.gelu, TF.gelu, U, gen=_wide(3), tol32=(1e-4, 2e-6)),
    Case("gelu", lambda x: F.gelu(x, approximate="tanh"),
         lambda x: TF.gelu(x, approximate="tanh"), U, gen=_wide(3), id="gelu_tanh"),
    Case("silu", F.silu, TF.silu, U, gen=_wide(3)),
    Case("softplus", F.softplus, TF.softplus, U, gen=_wide(3)),
    Case("softplus", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
         lambda x: TF.softplus(x, beta=2.0, threshold=3.0), U,
         gen=away_from((1.5,), margin=0.01), id="softplus_threshold"),
    Case("clip", lambda x: F.clip(x, -0.5, 1.0), lambda x: torch.clamp(x, -0.5, 1.0), U,
         gen=away_from((-0.5, 1.0))),
    Case("clip", lambda x: F.clip(x, -0.5, 1.0), lambda x: torch.clamp(x, -0.5, 1.0), U,
         gen=_on_bounds(-0.5, 1.0), fd=False, id="clip_at_bounds"),
    Case("clip", lambda x: F.clip(x, min=0.25), lambda x: torch.clamp(x, min=0.25), U,
         gen=_on_bounds(0.25, 0.25), fd=False, id="clip_min_only"),
    Case("clip", lambda x: F.clip(x, max=0.25), lambda x: torch.clamp(x, max=0.25), U,
         gen=away_from((0.25,)), id="clip_max_only"),
    Case("clip", lambda x: F.clip(x, 1.0, -1.0), lambda x: torch.clamp(x, 1.0, -1.0), U,
         id="clip_min_above_max"),
    Case("hardtanh", F.hardtanh, TF.hardtanh, U, gen=away_from((-1.0, 1.0))),
    Case("hardtanh", F.hardtanh, TF.hardtanh, U, gen=_on_bounds(-1.0, 1.0), fd=False,
         id="hardtanh_at_bounds"),
    Case("hardtanh", F.relu6, TF.relu6, U, gen=_wide(4), fd=False, id="relu6"),
    Case("erf", F.erf, torch.erf, U, gen=_wide(2), tol32=(1e-4, 1e-6)),
    Case("tensor_methods", lambda x: x.gelu() + x.silu() * x.erf() - x.softplus().clip(0.1, 2.0),
         lambda x: TF.gelu(x) + TF.silu(x) * torch.erf(x) - TF.softplus(x).clamp(0.1, 2.0), U,
         gen=_wide(2), covers=("gelu", "silu", "erf", "softplus", "clip"), tol32=(1e-4, 1e-5)),
]  # fmt: skip
