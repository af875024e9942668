import os

import pytest
from hypothesis import HealthCheck, settings

# Reproducible in CI: the same examples every run; no per-example deadline (first calls
# compile Numba kernels).
settings.register_profile(
    "bpcli",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bpcli"))
# Plugins are off in tests unless a test registers one.
os.environ.setdefault("BPCLI_PLUGINS", "none")


def _blas_threads() -> int | None:
    import numpy  # noqa: F401  (loads BLAS, so threadpoolctl sees it)
    from threadpoolctl import threadpool_info

    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else None


_BLAS_DEFAULT = _blas_threads()


@pytest.fixture(autouse=True)
def _restore_thread_counts():
    """A test that sets the thread count (``--threads 1`` through the CLI in-process) must not
    change the BLAS threads of the tests after it: summation orders, and so the last bits of
    results, depend on them."""
    yield
    from bpcli.engine import threads

    if threads._requested is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(_BLAS_DEFAULT, user_api="blas")
        threads._requested = None
