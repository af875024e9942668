"""Thread counts of Numba and BLAS, set together.

Both start from ``OMP_NUM_THREADS``/``NUMBA_NUM_THREADS`` when set (the libraries read them).
"""

from __future__ import annotations

from bpcli.errors import BpcliError


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba kernels and in BLAS matrix products."""
    import numba
    from threadpoolctl import threadpool_limits

    if not isinstance(n, int) or n < 1:
        raise BpcliError(f"thread count must be a positive integer, got {n!r}", "set_num_threads")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n, user_api="blas")


def get_num_threads() -> int:
    import numba

    return numba.get_num_threads()
