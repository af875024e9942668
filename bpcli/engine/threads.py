"""Thread counts of Numba and BLAS, set together.

Both start from ``OMP_NUM_THREADS``/``NUMBA_NUM_THREADS`` when set (the libraries read them).
"""

from __future__ import annotations

from bpcli.errors import BpcliError

_requested: int | None = None


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba kernels and in BLAS matrix products."""
    global _requested
    from threadpoolctl import threadpool_limits

    if not isinstance(n, int) or n < 1:
        raise BpcliError(f"thread count must be a positive integer, got {n!r}", "set_num_threads")
    _requested = n
    threadpool_limits(n, user_api="blas")
    _apply_numba(n)


def _apply_numba(n: int) -> None:
    # NOTE: numba.set_num_threads() starts Numba's OpenMP thread pool, a second libgomp beside
    # PyTorch's that made torch ~20x slower in the same process. No kernel uses parallel=True
    # today, so the pool is only sized once something else has started it.
    import numba
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int:
    """The thread count last set (else Numba's default, the number of cores)."""
    if _requested is not None:
        return _requested
    import numba

    return numba.config.NUMBA_NUM_THREADS
