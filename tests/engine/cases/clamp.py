"""Cases for engine/ops/clamp.py: clamp with tensor bounds (broadcast, ties, min > max)."""

import numpy as np
import torch

from bpcli import functional as F
from tests.engine.harness import Case, broadcast_shapes


def spread(shapes, dtype, rng):
    """x, lo, hi on a coarse grid, so ties x == lo and lo > hi happen (torch's rules there);
    gaps of 0.25 keep finite differences away from the kinks."""
    return [np.asarray(rng.integers(-8, 9, s) / 4 + 0.1 * i, dtype) for i, s in enumerate(shapes)]


def _fd_safe(shapes, dtype, rng):
    x, *bounds = spread(shapes, dtype, rng)
    return [x + 0.125, *bounds]  # no ties: the finite difference of a kink is not a gradient


def bounds_fit(n):
    """x of the full broadcast shape, bounds broadcasting to it (torch's backward fails when
    a bound is larger than x)."""
    return broadcast_shapes(n).map(lambda s: (np.broadcast_shapes(*s), *s[1:]))


CASES = [
    Case("clamp_tensor", lambda x, lo, hi: F.clamp(x, lo, hi),
         lambda x, lo, hi: torch.clamp(x, lo, hi), bounds_fit(3), gen=spread, fd=False,
         id="clamp_tensor_ties"),
    Case("clamp_tensor", lambda x, lo, hi: F.clamp(x, lo, hi),
         lambda x, lo, hi: torch.clamp(x, lo, hi), bounds_fit(3), gen=_fd_safe),
    Case("clamp_tensor", lambda x, lo: F.clamp(x, min=lo), lambda x, lo: torch.clamp(x, min=lo),
         bounds_fit(2), gen=spread, fd=False, id="clamp_tensor_min"),
    Case("clamp_tensor", lambda x, hi: x.clamp(max=hi), lambda x, hi: x.clamp(max=hi),
         bounds_fit(2), gen=spread, fd=False, id="clamp_tensor_max"),
    Case("clip", lambda x: F.clip(x, np.float64(-0.5), 0.5), lambda x: torch.clip(x, -0.5, 0.5),
         broadcast_shapes(1), gen=_fd_safe, id="clip_numbers_via_clamp"),
]  # fmt: skip
