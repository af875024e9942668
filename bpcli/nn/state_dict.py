"""The loading side of Module state dicts, with torch's key names and messages; dtype/device
parsing for ``Module.to``; the name rules of ``register_buffer``/``add_module``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def check_name(module, name, kind: str, store: dict) -> None:
    """torch's rules: a non-empty string without dots that is not a method or property of
    the class (a ModuleDict key ``"keys"`` must not hide ``.keys()``)."""
    where = f"register_{kind}"
    if not isinstance(name, str):
        raise BpcliError(f"{kind} name must be a string, got {type(name).__name__}", where)
    if not name or "." in name:
        raise BpcliError(f'{kind} name can\'t be empty or contain ".", got {name!r}', where)
    if name not in store and hasattr(type(module), name):
        raise BpcliError(f"attribute {name!r} already exists", where)


def _quoted(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _as_array(value, key: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu") and not isinstance(value, Tensor):
        value = value.detach().cpu().numpy()  # a torch tensor: no import of torch needed
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise BpcliError(f"{key}: not an array ({e})", "load_state_dict") from None
    if arr.dtype == object:
        raise BpcliError(f"{key}: not an array but a {type(value).__name__}", "load_state_dict")
    return arr


def as_dtype(value) -> np.dtype | None:
    """A numpy dtype from a numpy/str/torch dtype (``torch.float64`` -> float64), else None."""
    if isinstance(value, np.dtype):
        return value
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        value = str(value).removeprefix("torch.")
    try:
        return np.dtype(value)
    except TypeError:
        return None


def is_device(value) -> bool:
    return type(value).__name__ == "device"


def load(module, state_dict: Mapping, strict: bool) -> IncompatibleKeys:
    """Module.load_state_dict: check every key and shape first, then copy."""
    if not isinstance(state_dict, Mapping):
        raise BpcliError(
            f"expected state_dict to be dict-like, got {type(state_dict).__name__}",
            "load_state_dict",
        )
    own = dict(module._state_items())
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    arrays, problems = {}, []
    if strict and missing:
        problems.append("Missing key(s) in state_dict: " + _quoted(missing) + ".")
    if strict and unexpected:
        problems.append("Unexpected key(s) in state_dict: " + _quoted(unexpected) + ".")
    for k, t in own.items():
        if k not in state_dict:
            continue
        arr = _as_array(state_dict[k], k)
        if arr.shape != t.shape:
            problems.append(
                f"size mismatch for {k}: copying a param with shape {arr.shape} from "
                f"checkpoint, the shape in current model is {t.shape}."
            )
        arrays[k] = arr
    if problems:
        raise BpcliError(
            f"Error(s) in loading state_dict for {type(module).__name__}: " + " ".join(problems),
            "load_state_dict",
        )
    for k, arr in arrays.items():
        t = own[k]
        t.data[...] = arr.astype(t.dtype, copy=False)
        t._version += 1
    return IncompatibleKeys(missing, unexpected)
