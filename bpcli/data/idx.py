"""IDX files, the format of MNIST and Fashion-MNIST (gzipped or not).

An IDX file is: two zero bytes, a type byte, a byte giving the number of dimensions ``d``, then
``d`` big-endian uint32 sizes, then the data in C order, big-endian.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.errors import BpcliError

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, un-gzipped if it starts with the gzip magic (whatever its name)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise BpcliError("no such file", str(p)) from None
    except IsADirectoryError:
        raise BpcliError("is a directory, expected a file", str(p)) from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise BpcliError(f"damaged or truncated gzip data ({e})", str(p)) from None


def read_idx(path: str | Path) -> np.ndarray:
    """The array in an IDX file, in native byte order."""
    where = str(path)
    data = read_bytes(path)
    if len(data) < 4:
        raise BpcliError(f"truncated: {len(data)} bytes, too short for an IDX header", where)
    zero, code, ndim = struct.unpack_from(">HBB", data)
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        magic = struct.unpack_from(">I", data)[0]
        raise BpcliError(
            f"not an IDX file: magic number 0x{magic:08X}, expected 0x0000TTDD "
            "(TT = 08, 09, 0B, 0C, 0D or 0E, DD = number of dimensions)",
            where,
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BpcliError(f"truncated: the header of {ndim} dimensions needs {header} bytes, "
                         f"the file has {len(data)}", where)  # fmt: skip
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = IDX_TYPES[code]
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(data) - header
    if have < need:
        raise BpcliError(
            f"truncated: shape {shape} of {dtype.name} needs {need} data bytes, found {have}",
            where,
        )
    if have > need:
        raise BpcliError(f"{have - need} unexpected bytes after the data of shape {shape}", where)
    arr = np.frombuffer(data, dtype=dtype, count=need // dtype.itemsize, offset=header)
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(
    images: str | Path, labels: str | Path, scale: bool = True, channel: bool = True,
    n_classes: int | None = None, name: str | None = None,
) -> Dataset:  # fmt: skip
    """An images IDX file and its labels IDX file as a classification dataset.

    Args:
        images: e.g. ``train-images-idx3-ubyte.gz``, shape ``(n, h, w)``.
        labels: e.g. ``train-labels-idx1-ubyte.gz``, shape ``(n,)``.
        scale: uint8 images become float32 in [0, 1] (divided by 255); other types become float32.
        channel: add a channel axis to 3-D images, ``(n, 1, h, w)``, as conv2d expects.
        n_classes: labels must lie in ``0..n_classes-1``; default max label + 1.
    """
    x, y = read_idx(images), read_idx(labels)
    if y.ndim != 1:
        raise BpcliError(f"a labels file must be 1-D, this one has shape {y.shape}", str(labels))
    if y.dtype.kind not in "iu":
        raise BpcliError(f"labels must be integers, this file holds {y.dtype.name}", str(labels))
    if len(x) == 0:
        raise BpcliError("the dataset is empty: the file holds 0 images", str(images))
    if len(x) != len(y):
        raise BpcliError(f"{len(y)} labels for {len(x)} images in {images}", str(labels))
    if scale:
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    if channel and x.ndim == 3:
        x = x[:, None]
    return Dataset(
        x, y.astype(np.int64), "classification", name or Path(images).name.split(".")[0],
        n_classes, meta={"source": str(labels), "images": str(images), "labels": str(labels)},
    )  # fmt: skip
