"""Regenerate bpcli/data/files/digits.npz from the copy of the UCI digits that scikit-learn ships.

Usage (scikit-learn is needed only here, never at run time):

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn
    /tmp/skl/bin/python scripts/make_digits.py [path/to/digits.csv.gz]

Writes uint8 images (1797, 8, 8) with values 0..16 and int64 labels, and prints the sha256.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _npz import write_npz

OUT = Path(__file__).resolve().parents[1] / "bpcli" / "data" / "files" / "digits.npz"


def sklearn_csv() -> Path:
    from importlib.resources import files

    return Path(str(files("sklearn.datasets") / "data" / "digits.csv.gz"))


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else sklearn_csv()
    with gzip.open(src, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (1797, 65):
        raise SystemExit(f"{src}: expected a 1797 x 65 table, got {table.shape}")
    images = table[:, :64].astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, 64].astype(np.int64)
    assert np.array_equal(images.reshape(-1, 64), table[:, :64]), "non-integer pixel values"
    assert images.max() <= 16 and set(labels.tolist()) == set(range(10))
    digest = write_npz(OUT, x=images, y=labels)
    print(f"source {src}")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
