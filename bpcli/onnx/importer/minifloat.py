"""Floats narrower than float32 (float16, bfloat16, the float8 family) as the importer meets
them in ONNX graphs: how Cast rounds into them, and numpy computations that cannot take them.

The engine computes in float32/float64 only; these dtypes appear as graph inputs, Cast
targets and constants. The float8/E8M0 rounding rules of ONNX's Cast (saturation, round_mode)
come from onnx's own public ``numpy_helper`` (an installed dependency of the importer), so
bpcli rounds exactly as the spec's tables say.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import numpy_helper

_FLOAT8 = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"}


def is_narrow_float(dtype: np.dtype) -> bool:
    """float16, bfloat16, float8*, float4 (ml_dtypes types have numpy kind 'V')."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.itemsize < 4
    return dtype.kind == "V" and dtype.name.startswith(("bfloat", "float"))


def cast(a: np.ndarray, to: np.dtype, saturate: bool = True, round_mode: str = "up"):
    """``a.astype(to)`` with ONNX Cast's rules for the float8 targets."""
    to = np.dtype(to)
    if to.name == "float8_e8m0fnu":
        return numpy_helper.to_float8e8m0(a.astype(np.float32), saturate, round_mode)
    if to.name in _FLOAT8 and saturate and a.dtype.kind in "fV":
        # Out-of-range values and +-inf clamp to the largest finite value; NaN stays NaN.
        return numpy_helper.saturate_cast(a.astype(np.float32), to)
    return a.astype(to)


def widened(fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``fn(*arrays)`` for numpy functions without narrow-float kernels (einsum, matmul): the
    narrow inputs are widened to float32, and the result rounded once to their dtype."""
    narrow = [a.dtype for a in arrays if is_narrow_float(a.dtype)]
    if not narrow:
        return fn(*arrays)
    wide = [a.astype(np.float32) if is_narrow_float(a.dtype) else a for a in arrays]
    return np.asarray(fn(*wide)).astype(narrow[0])
