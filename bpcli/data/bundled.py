"""The datasets that ship inside the package (see files/README.md for sources and licences)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.data.text import text_dataset

DIGITS_SHA256 = "b0444bae44bf0a439d23a7cb5c23fc8974aed647acf8f6e9c30c822d1ac9771e"
AUSTEN_SHA256 = "dfc684d4f857fa938268f9ab9c5567b64bd0691251eca959644adeabe6287a4d"


def data_file(name: str):
    """A Traversable for a bundled file (works from a wheel, a zip or a source tree)."""
    return files("bpcli.data") / "files" / name


def load_digits(scale: bool = True, flatten: bool = False) -> Dataset:
    """The 1,797 8x8 UCI handwritten digits, 10 classes (Alpaydin & Kaynak, CC BY 4.0).

    Args:
        scale: float32 pixels in [0, 1] (value / 16); False keeps the uint8 counts 0..16.
        flatten: x ``(1797, 64)`` for an MLP instead of ``(1797, 1, 8, 8)`` for conv2d.
    """
    with data_file("digits.npz").open("rb") as f, np.load(f) as z:
        x, y = z["x"], z["y"]
    x = x.astype(np.float32) / 16 if scale else x
    x = x.reshape(len(x), -1) if flatten else x[:, None]
    meta = {"source": "bpcli/data/files/digits.npz", "licence": "CC BY 4.0"}
    classes = tuple(str(i) for i in range(10))
    return Dataset(x, y, "classification", "digits", 10, classes, meta)


def austen_text() -> str:
    return data_file("pride_and_prejudice.txt").read_text(encoding="utf-8")


def load_austen() -> Dataset:
    """Jane Austen's *Pride and Prejudice* (public domain) for character language models:
    684,768 characters, 75 distinct."""
    return text_dataset(austen_text(), "austen", source="bpcli/data/files/pride_and_prejudice.txt")
