"""digits1d: a 1-D "digits" task in the spirit of MNIST-1D (Greydanus, 2020), written from its
description, not its code.

Ten hand-made templates of 12 points are each stretched to a random width, placed at a random
offset on a zero canvas, scaled, given Gaussian-filtered (correlated) noise in the background,
white noise everywhere, a random slope (shear), and resampled to 40 points. The random placement
is what makes it a task for a small 1-D CNN: a convolution shares its weights across offsets, an
MLP must learn each shape at each offset from examples.
"""

from __future__ import annotations

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.errors import BpcliError

# One row per digit: shapes that stay distinct under translation and moderate stretching.
TEMPLATES = np.array(
    [
        [0, .4, .8, 1, 1, 1, 1, 1, 1, .8, .4, 0],  # 0 wide bump
        [0, 0, 0, 0, .5, 1, 1, .5, 0, 0, 0, 0],  # 1 narrow spike
        [0, .5, 1, .5, 0, 0, 0, 0, -.5, -1, -.5, 0],  # 2 up then down
        [0, -.5, -1, -.5, 0, 0, 0, 0, .5, 1, .5, 0],  # 3 down then up
        [0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1, 0],  # 4 ramp up, drop
        [0, 1, .9, .8, .7, .6, .5, .4, .3, .2, .1, 0],  # 5 jump, ramp down
        [0, -.4, -.8, -1, -1, -1, -1, -1, -1, -.8, -.4, 0],  # 6 wide dip
        [0, 1, .3, 0, 0, 0, 0, 0, 0, .3, 1, 0],  # 7 two spikes
        [0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1],  # 8 oscillation
        [0, .5, .5, .5, .5, .5, .5, 1, 1, 1, 1, 0],  # 9 staircase
    ],
    dtype=np.float64,
)  # fmt: skip
CANVAS = 72


def _gaussian_filter_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) matrix M with ``noise @ M`` = noise smoothed by a Gaussian, unit variance kept."""
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    m = np.exp(-0.5 * (d / sigma) ** 2)
    return m / np.sqrt((m**2).sum(axis=0, keepdims=True))


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) linear interpolation from n_in evenly spaced points to n_out."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    m = np.zeros((n_in, n_out))
    m[lo, np.arange(n_out)] = 1 - frac
    m[lo + 1, np.arange(n_out)] += frac
    return m


def digits1d(
    n_samples: int = 5000, length: int = 40, width: tuple[float, float] = (12.0, 20.0),
    scale: float = 0.4, corr_noise: float = 0.25, white_noise: float = 0.02,
    shear: float = 0.4, flatten: bool = False, seed: int = 0,
) -> Dataset:  # fmt: skip
    """The digits1d dataset: x float32 ``(n, 1, length)`` (``(n, length)`` if flatten), y 0..9.

    Args:
        n_samples: total samples, classes balanced (counts differ by at most one).
        length: points per sample after resampling.
        width: range of the template's stretched width on the 72-point canvas.
        scale: amplitude is multiplied by a factor uniform in ``1 +- scale/2``.
        corr_noise: std of the smoothed background noise (Gaussian filter, sigma 2 points).
        white_noise: std of the independent per-point noise.
        shear: a straight line is added whose two ends differ by up to ``shear``.
        flatten: drop the channel axis (for an MLP).
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
    """
    lo_w, hi_w = width
    if n_samples < 1 or length < 2 or not 2 <= lo_w <= hi_w <= CANVAS:
        raise BpcliError(
            f"need n_samples >= 1, length >= 2, 2 <= width <= {CANVAS}; got {n_samples}, "
            f"{length}, {width}",
            "digits1d",
        )
    rng = np.random.default_rng(seed)
    n_t = TEMPLATES.shape[1]
    y = rng.permutation(np.arange(n_samples) % len(TEMPLATES))
    w = rng.uniform(lo_w, hi_w, size=(n_samples, 1))
    start = rng.uniform(0, CANVAS - w)
    # Template coordinate of each canvas point; outside [0, n_t - 1] the canvas is background.
    u = (np.arange(CANVAS)[None, :] - start) / w * (n_t - 1)
    inside = (u >= 0) & (u <= n_t - 1)
    i0 = np.clip(np.floor(u).astype(np.int64), 0, n_t - 2)
    frac = np.clip(u - i0, 0.0, 1.0)
    t = TEMPLATES[y]
    x = np.take_along_axis(t, i0, 1) * (1 - frac) + np.take_along_axis(t, i0 + 1, 1) * frac
    x = np.where(inside, x, 0.0) * rng.uniform(1 - scale / 2, 1 + scale / 2, (n_samples, 1))
    smooth = rng.standard_normal((n_samples, CANVAS)) @ _gaussian_filter_matrix(CANVAS, 2.0)
    x += np.where(inside, 0.0, corr_noise * smooth)
    x += white_noise * rng.standard_normal(x.shape)
    slope = rng.uniform(-shear / 2, shear / 2, (n_samples, 1))
    x += slope * np.linspace(-1.0, 1.0, CANVAS)[None, :]
    x = (x @ _resample_matrix(CANVAS, length)).astype(np.float32)
    meta = dict(
        n_samples=n_samples, length=length, width=list(width), scale=scale,
        corr_noise=corr_noise, white_noise=white_noise, shear=shear, seed=seed,
    )  # fmt: skip
    x = x if flatten else x[:, None, :]
    return Dataset(x, y.astype(np.int64), "classification", "digits1d", 10, meta=meta)
