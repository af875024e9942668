"""How far a user's inputs are in scale from the training inputs.

``input_rms`` (saved in checkpoints) is the root mean square of the raw training inputs, the
values the loader gave before standardisation; inputs whose RMS is far from it were most likely
scaled differently (pixels 0..16 against a model trained on 0..1).
"""

from __future__ import annotations

import numpy as np

SCALE_WARN = 4.0  # warn when the inputs' RMS is this many times above or below the training's


def input_rms(x: np.ndarray) -> float | None:
    """Root mean square of numeric inputs (None when there are none)."""
    if x.dtype.kind not in "biuf" or x.size == 0:
        return None
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def scale_warning(x: np.ndarray, trained_rms: float | None) -> str | None:
    """One line when ``x`` is on a scale far from the training inputs', else None."""
    rms = input_rms(x)
    if rms is None or not trained_rms or not np.isfinite(rms):
        return None
    ratio = rms / trained_rms
    if ratio >= SCALE_WARN:
        how = f"~{ratio:.2g}x larger than"
    elif ratio and ratio <= 1 / SCALE_WARN:
        how = f"~{1 / ratio:.2g}x smaller than"
    else:
        return None
    return (f"inputs are {how} the training data's (RMS {rms:.3g} against {trained_rms:.3g}); "
            "were they scaled the same way?")  # fmt: skip
