import os

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
