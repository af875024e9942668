"""The one place Numba options live.

Every kernel is compiled lazily on first call and cached on disk (``cache=True``), so
``import bpcli`` compiles nothing and a second process loads machine code from the cache.
"""

from __future__ import annotations

import numba

# NOTE: no 'nnan'/'ninf': the NaN/Inf guard of the trainer needs non-finite values to
# propagate exactly as IEEE says. 'contract' (FMA) and 'reassoc' (vectorised sums) are safe.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})


def kernel(fn=None, *, parallel: bool = False):
    """``@kernel`` / ``@kernel(parallel=True)``: njit with the project's options.

    ``error_model="numpy"``: x / 0 gives inf/nan as numpy does (the NaN guard sees it) and
    divisions need no zero check, so loops with a division still vectorise.
    """
    deco = numba.njit(
        cache=True, nogil=True, fastmath=set(FASTMATH), parallel=parallel, error_model="numpy"
    )
    return deco if fn is None else deco(fn)


prange = numba.prange
