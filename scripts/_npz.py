"""Byte-reproducible ``.npz`` writing shared by the data-making scripts.

``np.savez_compressed`` stamps each member with the current time, so two runs give files with
different sha256 sums; this writes the same format with a fixed timestamp.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path, **arrays: np.ndarray) -> str:
    """Write ``arrays`` to ``path`` as a deflated ``.npz``; return the file's sha256."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
