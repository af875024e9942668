"""Small procedural datasets (numpy only, seeded): 2-D classification and 1-D regression."""

from __future__ import annotations

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.errors import BpcliError


def _per_class(n_samples: int, n_classes: int, name: str) -> np.ndarray:
    """Samples per class: as equal as possible, the first classes taking the remainder."""
    if n_classes < 1 or n_samples < n_classes:
        raise BpcliError(
            f"n_samples={n_samples} must be at least n_classes={n_classes} (>= 1)", name
        )
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    return counts


def _finish(x, y, name: str, n_classes: int, rng, **meta) -> Dataset:
    # Interleave the classes so a head-slice or an unshuffled batch is not one class only.
    perm = rng.permutation(len(x))
    return Dataset(
        x[perm].astype(np.float32), y[perm].astype(np.int64), "classification", name, n_classes,
        meta=meta,
    )  # fmt: skip


def spirals(
    n_samples: int = 300, n_classes: int = 3, noise: float = 0.2, turns: float = 0.64,
    seed: int = 0,
) -> Dataset:  # fmt: skip
    """Interleaved spiral arms in 2-D, one per class (the CS231n toy set).

    Args:
        noise: std of the Gaussian jitter of each point's angle (radians).
        turns: how far each arm winds, in full turns.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, m in enumerate(_per_class(n_samples, n_classes, "spirals")):
        r = np.linspace(0.05, 1.0, m)
        t = 2 * np.pi * (turns * r + c / n_classes) + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, c))
    meta = dict(n_samples=n_samples, noise=noise, turns=turns, seed=seed)
    return _finish(np.concatenate(xs), np.concatenate(ys), "spirals", n_classes, rng, **meta)


def xor(n_samples: int = 200, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Four Gaussian blobs at (+-1, +-1); the label is 1 where the signs of x0 and x1 differ."""
    rng = np.random.default_rng(seed)
    counts = _per_class(n_samples, 4, "xor")
    corners = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float64)
    centre = np.repeat(corners, counts, axis=0)
    y = np.repeat([0, 0, 1, 1], counts)
    x = centre + noise * rng.standard_normal(centre.shape)
    return _finish(x, y, "xor", 2, rng, n_samples=n_samples, noise=noise, seed=seed)


def moons(n_samples: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles (as scikit-learn's make_moons)."""
    rng = np.random.default_rng(seed)
    m0, m1 = _per_class(n_samples, 2, "moons")
    a0, a1 = np.linspace(0, np.pi, m0), np.linspace(0, np.pi, m1)
    upper = np.stack([np.cos(a0), np.sin(a0)], axis=1)
    lower = np.stack([1 - np.cos(a1), 0.5 - np.sin(a1)], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat([0, 1], [m0, m1])
    return _finish(x, y, "moons", 2, rng, n_samples=n_samples, noise=noise, seed=seed)


def circles(
    n_samples: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0
) -> Dataset:
    """A small circle (label 1, radius ``factor``) inside a unit circle (label 0)."""
    if not 0 < factor < 1:
        raise BpcliError(f"factor must be in (0, 1), got {factor}", "circles")
    rng = np.random.default_rng(seed)
    m0, m1 = _per_class(n_samples, 2, "circles")
    a0 = np.linspace(0, 2 * np.pi, m0, endpoint=False)
    a1 = np.linspace(0, 2 * np.pi, m1, endpoint=False)
    outer = np.stack([np.cos(a0), np.sin(a0)], axis=1)
    inner = factor * np.stack([np.cos(a1), np.sin(a1)], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat([0, 1], [m0, m1])
    meta = dict(n_samples=n_samples, noise=noise, factor=factor, seed=seed)
    return _finish(x, y, "circles", 2, rng, **meta)


def sine(
    n_samples: int = 200, noise: float = 0.1, low: float = -np.pi, high: float = np.pi,
    seed: int = 0,
) -> Dataset:  # fmt: skip
    """1-D regression ``y = sin(x) + noise``, x uniform in [low, high); x and y are (n, 1)."""
    if n_samples < 1 or not low < high:
        raise BpcliError(f"need n_samples >= 1 and low < high, got {n_samples}, {low}, {high}",
                         "sine")  # fmt: skip
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n_samples, 1))
    y = np.sin(x) + noise * rng.standard_normal(x.shape)
    meta = dict(n_samples=n_samples, noise=noise, low=low, high=high, seed=seed)
    return Dataset(x.astype(np.float32), y.astype(np.float32), "regression", "sine", meta=meta)
