"""Checkpoints: one ``.npz`` (read with ``allow_pickle=False``) written atomically.

Layout: each top-level entry of the payload is split by ``bpcli.optim.flatten_state`` into a
JSON tree and its arrays; the arrays are stored as ``<entry>/<dotted key>`` (``model/fc.weight``,
``optim/state.0.exp_avg``) and all the trees, with the format version, in one JSON document
stored as a ``uint8`` array under ``__json__``. Nothing is ever unpickled, so a checkpoint from
an untrusted source can be inspected safely.

The write goes to a temporary file in the same directory, is flushed and fsynced, then renamed
over the target with ``os.replace`` (atomic on POSIX and Windows) and the directory is fsynced:
a crash or a kill at any moment leaves either the previous checkpoint or the new one, never a
torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.errors import BpcliError
from bpcli.optim import flatten_state, unflatten_state

FORMAT = "bpcli-checkpoint"
VERSION = 1
JSON_KEY = "__json__"

# Spec fields that may differ between a run and its resumption (training longer is the point).
RESUMABLE_FIELDS = ("train.epochs", "train.log_every", "description")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (a dict of JSON-able values, numpy arrays and state dicts) atomically.

    Raises:
        BpcliError: the directory is not writable or the disk is full (names the path).
    """
    path = Path(path)
    tree: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for entry, value in payload.items():
        if "/" in entry or entry == JSON_KEY:
            raise BpcliError(f"bad checkpoint entry name {entry!r}", str(path))
        tree[entry], found = flatten_state(value)
        for key, arr in found.items():
            # NOTE: not np.ascontiguousarray, which turns 0-d arrays (num_batches_tracked) into 1-d
            arrays[f"{entry}/{key}"] = np.require(arr, requirements="C")
    doc = {"format": FORMAT, "version": VERSION, "entries": tree}
    arrays[JSON_KEY] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        _discard(tmp)
        raise BpcliError(f"cannot write the checkpoint: {e.strerror or e}", str(path)) from None
    except BaseException:
        # NOTE: KeyboardInterrupt mid-write too: the previous checkpoint is untouched.
        _discard(tmp)
        raise
    return path


def link_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` the same checkpoint as ``src``, atomically and without rewriting the data:
    a hard link renamed over ``dst`` (a copy where the file system has no hard links). The
    next ``save_checkpoint(src)`` replaces ``src`` by a new file, so ``dst`` keeps this one."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        _discard(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
    except OSError as e:
        _discard(tmp)
        raise BpcliError(f"cannot write the checkpoint: {e.strerror or e}", str(dst)) from None
    return dst


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The payload saved by ``save_checkpoint``; arrays are fresh numpy arrays.

    Raises:
        BpcliError: the file is missing, truncated, corrupted or not a bpcli checkpoint.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from bpcli.app.spec.schema import ONNX_HINT

        raise BpcliError(f"an ONNX model, not a checkpoint: {ONNX_HINT}", str(path))
    if path.is_dir():
        raise BpcliError("is a directory, not a checkpoint file (try best.npz or last.npz in it)",
                         str(path))  # fmt: skip
    if not path.exists():
        raise BpcliError("no such checkpoint file", str(path))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, OSError) as e:
        raise BpcliError(f"corrupted or truncated checkpoint ({e})", str(path)) from None
    raw = arrays.pop(JSON_KEY, None)
    if raw is None or raw.dtype != np.uint8:
        raise BpcliError("not a bpcli checkpoint (no metadata entry)", str(path))
    try:
        doc = json.loads(raw.tobytes().decode())
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
        entries = doc["entries"]
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as e:
        raise BpcliError(f"corrupted checkpoint metadata ({e})", str(path)) from None
    if doc.get("version", 0) > VERSION:
        raise BpcliError(
            f"checkpoint format version {doc['version']} is newer than this bpcli reads "
            f"({VERSION}); upgrade bpcli",
            str(path),
        )
    by_entry: dict[str, dict[str, np.ndarray]] = {k: {} for k in entries}
    for key, arr in arrays.items():
        entry, _, sub = key.partition("/")
        if entry in by_entry:
            by_entry[entry][sub] = arr
    out = {}
    for entry, tree in entries.items():
        try:
            out[entry] = unflatten_state(tree, by_entry[entry])
        except BpcliError as e:
            raise BpcliError(f"corrupted checkpoint: {entry}: {e.msg}", str(path)) from None
    return out


def require(ckpt: dict[str, Any], keys: tuple[str, ...], path: str | os.PathLike) -> None:
    """BpcliError naming the file if the checkpoint lacks any of ``keys``."""
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise BpcliError(f"incomplete checkpoint: missing {', '.join(missing)}", str(path))


# -- spec identity ----------------------------------------------------------------------------
def flat_fields(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` for every leaf of nested dicts."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flat_fields(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def _identity(spec_dict: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in flat_fields(spec_dict).items()
        if k not in RESUMABLE_FIELDS and k != "source"
    }


def spec_hash(spec_dict: dict[str, Any]) -> str:
    """sha256 of the resolved spec without the fields a resumed run may change (epochs)."""
    text = json.dumps(_identity(spec_dict), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_same_spec(ckpt: dict[str, Any], spec_dict: dict[str, Any], path) -> None:
    """BpcliError naming the file and the differing fields if the checkpoint is from another
    spec."""
    if ckpt.get("spec_hash") == spec_hash(spec_dict):
        return
    theirs, ours = _identity(ckpt.get("spec") or {}), _identity(spec_dict)
    diff = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    shown = ", ".join(
        f"{k} ({_show(theirs, k)} in the checkpoint, {_show(ours, k)} now)" for k in diff[:4]
    )
    more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
    raise BpcliError(
        f"checkpoint is from another spec: {shown or 'spec hash differs'}{more}", str(path)
    )


def _show(fields: dict[str, Any], key: str) -> str:
    return json.dumps(fields[key]) if key in fields else "unset"


# -- helpers ----------------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; the rename is durable there anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink()
    except OSError:
        pass
