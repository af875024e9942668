"""The engine's default random generator, seeded by ``bp.manual_seed``."""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the default generator (initialisers, dropout without a generator, ``bp.randn``)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng() -> np.random.Generator:
    return _rng


def resolve(generator=None, seed: int | None = None) -> np.random.Generator:
    """An explicit generator, else a new one from ``seed``, else the default one."""
    if generator is not None:
        return generator
    if seed is not None:
        return np.random.default_rng(seed)
    return _rng


# Where this process's rows start in the global batch under data-parallel training
# (``bpcli.dist``): dropout shifts its counter by the elements before them, so every sample
# gets the mask the one-process run draws for it, whichever rank holds it.
_shard = (0, 0)


def set_batch_shard(start: int, rows: int) -> None:
    """This process computes rows ``start .. start + rows`` of the global batch (0, 0: all)."""
    global _shard
    _shard = (int(start), int(rows))


def batch_shard() -> tuple[int, int]:
    return _shard
