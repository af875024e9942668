"""The checkerboard dataset: a procedural 2-D classification set (numpy only, seeded)."""

from __future__ import annotations

import numpy as np
from bpcli.data import Dataset
from bpcli.errors import BpcliError

__all__ = ["checkerboard"]


def checkerboard(
    n_samples: int = 400, tiles: int = 4, noise: float = 0.0, seed: int = 0
) -> Dataset:
    """Points in the square [-1, 1)^2 cut into ``tiles`` x ``tiles`` cells; a point's label is
    the colour of its cell, ``(row + column) % 2``.

    The two classes get ``n_samples // 2`` points each (the first the odd one): each point
    picks a cell of its colour at random, then a uniform position in it.

    Args:
        n_samples: number of points (>= 2).
        tiles: cells per side (>= 2).
        noise: std of Gaussian jitter added to the positions (points may cross a border).
        seed: seed of the generator; equal arguments give equal data.
    """
    if not (isinstance(tiles, int) and tiles >= 2):
        raise BpcliError(f"tiles must be an integer >= 2, got {tiles!r}", "checkerboard")
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise BpcliError(f"n_samples must be an integer >= 2, got {n_samples!r}", "checkerboard")
    if noise < 0:
        raise BpcliError(f"noise must be >= 0, got {noise}", "checkerboard")
    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(tiles * tiles), tiles)
    counts = (n_samples - n_samples // 2, n_samples // 2)
    xs, ys = [], []
    for label, m in enumerate(counts):
        cells = np.flatnonzero((rows + cols) % 2 == label)
        pick = rng.choice(cells, size=m)
        corner = np.stack([cols[pick], rows[pick]], axis=1)
        xs.append(-1.0 + (corner + rng.random((m, 2))) * (2.0 / tiles))
        ys.append(np.full(m, label))
    x = np.concatenate(xs) + noise * rng.standard_normal((n_samples, 2))
    y = np.concatenate(ys)
    # Interleave the classes so a head-slice or an unshuffled batch holds both.
    perm = rng.permutation(n_samples)
    meta = dict(n_samples=n_samples, tiles=tiles, noise=noise, seed=seed)
    return Dataset(x[perm].astype(np.float32), y[perm].astype(np.int64), "classification",
                   "checkerboard", 2, meta=meta)  # fmt: skip
