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
