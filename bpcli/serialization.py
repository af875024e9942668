"""``bp.save`` / ``bp.load``: tensors and state dicts in the safetensors format, never pickle.

A safetensors file is a JSON header (names, dtypes, shapes, a ``str -> str`` metadata table)
and the raw little-endian bytes: loading it runs no code, and ``safetensors.torch.load_file``
opens what ``bp.save`` writes, as ``bp.load`` opens what ``safetensors.torch.save_file``
writes. The format holds one flat table of named tensors, so:

- a dict nested in the saved dict is flattened with dotted keys (``{"enc": {"w": t}}`` is
  stored as ``enc.w``, which is how a state dict names it anyway); ``bp.load`` returns the
  flat dict and does not rebuild the nesting, since a state dict's own keys contain dots;
- a value that is not an array (int, float, bool, None, str, or a list of them) goes into the
  metadata as JSON, and its key into the metadata entry ``bpcli.values``, so ``bp.load`` gives
  it back with its type. Other readers see it as text in the header;
- a single tensor is stored under the key ``tensor`` with ``bpcli.kind = tensor`` in the
  metadata, and ``bp.load`` returns it as a Tensor.

Files also carry ``format = pt``, the tag Hugging Face's loaders expect of torch weights.
Loaded tensors are float/int bpcli Tensors without gradient (parameters get their
``requires_grad`` from the module they are loaded into).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

_VALUES = "bpcli.values"  # metadata: JSON list of the keys whose values are in the metadata
_KIND = "bpcli.kind"
_SCALARS = (bool, int, float, str, type(None))
_INSTALL = "needs the safetensors package: pip install 'bpcli[safetensors]' (or safetensors)"


def _safetensors(where: str):
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise BpcliError(_INSTALL, where) from None
    return safetensors


def _array(value) -> np.ndarray | None:
    """The array behind a bpcli/torch tensor or numpy array; None for anything else."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()  # torch without importing it
    return None


def _is_plain(value) -> bool:
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _SCALARS)


def _flatten(obj: Mapping, prefix: str, arrays: dict, values: dict, path: str) -> None:
    for k, v in obj.items():
        if not isinstance(k, str):
            raise BpcliError(f"keys must be strings, got {k!r}", path)
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            _flatten(v, key + ".", arrays, values, path)
            continue
        if key in arrays or key in values:
            raise BpcliError(f"key {key!r} appears twice once nested dicts are flattened", path)
        arr = _array(v)
        if arr is not None:
            if arr.dtype == object or arr.dtype.kind not in "biufc":
                raise BpcliError(f"{key}: cannot save an array of dtype {arr.dtype}", path)
            # NOTE: safetensors' numpy writer reads the raw buffer: it must be C-contiguous
            arrays[key] = np.ascontiguousarray(arr)
        elif _is_plain(v):
            values[key] = v
        else:
            raise BpcliError(
                f"{key}: cannot save a {type(v).__name__} (tensors, dicts of them, and ints, "
                "floats, bools, strings or lists of them are saved)",
                path,
            )


def save(obj: Any, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a tensor, or a (nested) dict of tensors and plain values such as
    ``model.state_dict()``, to ``path`` in the safetensors format.

    Args:
        obj: a Tensor/array, or a dict whose values are tensors, arrays (torch tensors too),
            dicts (flattened with dotted keys), or ints/floats/bools/strings/lists of them.
        path: the file to write; written to a temporary file first and moved into place.
        metadata: extra ``str -> str`` entries for the file header.
    """
    where = os.fspath(path)
    st = _safetensors(where)
    arrays: dict[str, np.ndarray] = {}
    values: dict[str, Any] = {}
    meta = {"format": "pt"}
    single = _array(obj)
    if single is not None:
        _flatten({"tensor": single}, "", arrays, values, where)
        meta[_KIND] = "tensor"
    elif isinstance(obj, Mapping):
        _flatten(obj, "", arrays, values, where)
    else:
        raise BpcliError(
            f"can save a tensor or a dict of tensors, not a {type(obj).__name__}", where
        )
    for k, v in (metadata or {}).items():
        if not (isinstance(k, str) and isinstance(v, str)):
            raise BpcliError(f"metadata must map str to str, got {k!r}: {v!r}", where)
        meta[k] = v
    for k, v in values.items():
        if k in meta:
            raise BpcliError(f"value {k!r} clashes with a metadata entry of that name", where)
        meta[k] = json.dumps(v)
    if values:
        meta[_VALUES] = json.dumps(list(values))
    parent = os.path.dirname(os.path.abspath(where))
    if not os.path.isdir(parent):
        raise BpcliError(f"cannot write: no directory {parent}", where)
    tmp = f"{where}.tmp{os.getpid()}"
    try:
        st.numpy.save_file(arrays, tmp, metadata=meta)
        os.replace(tmp, where)
    except OSError as e:
        raise BpcliError(f"cannot write: {e.strerror or e}", where) from None
    except Exception as e:
        raise BpcliError(f"cannot write: {_first_line(e)}", where) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | os.PathLike) -> Tensor | dict[str, Any]:
    """Read a safetensors file (bpcli's, torch's, anyone's): a dict of Tensors by name (plus
    the plain values ``bp.save`` put in the metadata), or the Tensor that was saved alone.

    A missing file or one that is not safetensors is a BpcliError naming the path.
    """
    where = os.fspath(path)
    st = _safetensors(where)
    if not os.path.isfile(where):
        raise BpcliError("no such file", where)
    try:
        f = st.safe_open(where, framework="numpy")
    except OSError as e:
        raise BpcliError(f"cannot read: {e.strerror or e}", where) from None
    except Exception as e:
        raise BpcliError(f"not a safetensors file ({_first_line(e)})", where) from None
    out: dict[str, Any] = {}
    with f:
        meta = f.metadata() or {}
        for k in f.keys():
            try:
                arr = f.get_tensor(k)
            except Exception as e:
                raise BpcliError(f"{k}: cannot read ({_first_line(e)})", where) from None
            # own, writable memory: optimizers and copy_ change tensors in place
            out[k] = const(arr if arr.flags.writeable else arr.copy())
    if meta.get(_KIND) == "tensor" and set(out) == {"tensor"}:
        return out["tensor"]
    try:
        keys = json.loads(meta.get(_VALUES, "[]"))
        for k in keys:
            out[k] = json.loads(meta[k])
    except (ValueError, KeyError, TypeError) as e:
        raise BpcliError(f"broken {_VALUES} metadata ({e})", where) from None
    return out


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
