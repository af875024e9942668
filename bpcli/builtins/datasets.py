"""Built-in datasets: bundled, procedural, and loaders for a user's own files.

Each factory takes keyword options (``n_samples``, ``noise``, ``seed``, ``path``, ...) and
returns a ``bpcli.data.Dataset``.
"""

from __future__ import annotations

from bpcli import data

DATASETS = {
    "digits": data.load_digits,
    "austen": data.load_austen,
    "digits1d": data.digits1d,
    "spirals": data.spirals,
    "xor": data.xor,
    "moons": data.moons,
    "circles": data.circles,
    "sine": data.sine,
    "npz": data.load_npz,
    "csv": data.load_csv,
    "idx": data.load_idx,
    "npy_folder": data.load_npy_folder,
    "text": data.load_text,
    "image_folder": data.load_image_folder,
}


def bpcli_register_datasets(register) -> None:
    for name, factory in DATASETS.items():
        register(name, factory)
