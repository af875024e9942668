"""PyTorch's dtype rules: the default float dtype and type promotion between operands.

Promotion (as ``torch.result_type``): the highest category (bool < int < float < complex)
among the operands wins; its dtype comes from the highest-priority group holding that
category, where dimensioned tensors outrank 0-d tensors, which outrank Python scalars. So
``float32 tensor + float64 0-d tensor`` stays float32, ``int tensor + 1.5`` gives the default
float dtype and ``int32 tensor + 0-d float64 tensor`` gives float64.
"""

from __future__ import annotations

import numpy as np

from bpcli.errors import BpcliError

_default = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The dtype Python floats and float functions of ints get (float32 unless set)."""
    return _default


def set_default_dtype(dtype) -> None:
    """Set the default float dtype (float16, float32 or float64), as torch.set_default_dtype."""
    global _default
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise BpcliError(f"not a dtype: {dtype!r}", "set_default_dtype") from None
    if d.kind != "f":
        raise BpcliError(f"the default dtype must be a float dtype, got {d}", "set_default_dtype")
    _default = d


def category(dtype: np.dtype) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}.get(dtype.kind, 1)


def _promote_group(dtypes, cat: int) -> np.dtype | None:
    top = [d for d in dtypes if category(d) == cat]
    if not top:
        return None
    out = top[0]
    for d in top[1:]:
        out = np.promote_types(out, d)
    return out


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype torch gives an op of these arrays; 0-d arrays rank as 0-d tensors (Python
    scalars were already given their dtype by ``scalar_dtype``)."""
    dtypes = [a.dtype for a in arrays]
    cat = max(category(d) for d in dtypes)
    dimmed = _promote_group([a.dtype for a in arrays if a.ndim], cat)
    if dimmed is not None:
        return dimmed
    return _promote_group(dtypes, cat)


def scalar_dtype(value, other: np.dtype | None) -> np.dtype:
    """The dtype a Python (or numpy) scalar takes beside a tensor of dtype ``other``: the
    tensor's own unless the scalar is of a higher category (then bool, int64 or the default
    float dtype, as torch)."""
    if isinstance(value, bool | np.bool_):
        own = np.dtype(np.bool_)
    elif isinstance(value, int | np.integer):
        own = np.dtype(np.int64)
    elif isinstance(value, complex | np.complexfloating):
        own = np.dtype(np.complex64 if _default == np.float32 else np.complex128)
    else:
        own = _default
    if other is None or category(own) > category(other):
        return own
    return other


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of a float function (exp, true division, ...) of an operand of ``dtype``."""
    return dtype if dtype.kind in "fc" else _default
