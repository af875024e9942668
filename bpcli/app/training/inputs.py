"""Inputs a user brings to a trained model: read from any data file and shaped as the
training inputs were (their scale is compared by ``bpcli.data.scale``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bpcli.data.scale import input_rms, scale_warning  # noqa: F401 (re-exported)
from bpcli.errors import BpcliError


def fit_shape(x: np.ndarray, expect: tuple[int, ...], where: str) -> np.ndarray:
    """``x`` as ``(n, *expect)``: a lone sample gains its batch axis, images are flattened
    for an MLP (or unflattened) when the sizes agree; anything else is an error naming both
    shapes."""
    if not expect or tuple(x.shape[1:]) == expect:
        return x
    if x.shape == expect:
        return x[None]
    if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(expect)):
        return x.reshape(len(x), *expect)
    per = "(n, " + ", ".join(map(str, expect)) + ")"
    raise BpcliError(f"inputs of shape {tuple(x.shape)} do not fit the model, which takes {per}",
                     where)  # fmt: skip


def read_npz_inputs(src: Path) -> np.ndarray:
    """The array ``x`` (or the only array) of an .npz file, or a .npy array."""
    try:
        loaded = np.load(src, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy file
            return loaded
        with loaded as z:
            files = list(z.files)
            if "x" in files:
                return np.asarray(z["x"])
            if len(files) == 1:
                return np.asarray(z[files[0]])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        # numpy tries anything that is not .npy/.npz as a pickle, which bpcli never loads
        why = "" if "pickle" in str(e) else f" ({e})"
        raise BpcliError(f"not a .npz or .npy array file{why}", str(src)) from None
    raise BpcliError(
        f"expected an array named 'x' or a single array, found {', '.join(files) or 'none'}",
        str(src),
    )


def read_inputs(src: str | Path, spec: dict, input_shape: tuple[int, ...]) -> np.ndarray:
    """The raw inputs in ``src``, read as the training data were: an .npz/.npy array, a CSV
    (its label column, when present, is dropped), an image folder (labelled or not), an IDX
    images file. Values are checked (real, finite)."""
    from bpcli.data import loaders
    from bpcli.data.idx import read_idx
    from bpcli.data.images import image_files, read_image
    from bpcli.data.sources import file_kind

    p = Path(src)
    if not p.exists():
        raise BpcliError("no such input file or folder", str(p))
    d = spec.get("data", {})
    opts = d.get("options", {}) if d.get("dataset") in ("csv", "image_folder") else {}
    if p.suffix.lower() in (".npz", ".npy"):
        x = read_npz_inputs(p)
    elif (kind := file_kind(p)) == "csv":
        n = int(np.prod(input_shape)) if len(input_shape) == 1 else 0
        x = loaders.read_csv_features(p, n, opts.get("label", -1), opts.get("header"),
                                      opts.get("delimiter", "\t" if p.suffix == ".tsv" else ","))
    elif kind == "idx":
        x = read_idx(p)
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    elif p.is_dir() and (files := image_files(p) or [f for c in sorted(p.iterdir()) if c.is_dir()
                                                       for f in image_files(c)]):
        size = tuple(input_shape[1:]) if len(input_shape) == 3 else opts.get("size")
        channels = input_shape[0] if len(input_shape) == 3 else opts.get("channels", 3)
        x = np.stack([read_image(f, channels, size) for f in files])
    else:
        raise BpcliError(f"cannot predict on {kind} data; give an .npz/.npy, .csv, IDX file "
                         "or a folder of images", str(p))  # fmt: skip
    loaders.check_array(x, "x", str(p))
    return x
