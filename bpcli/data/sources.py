"""A data file named where a dataset name goes: which loader reads it, with which options.

``dataset = "my.csv"`` in a spec, ``--dataset my.npz`` on the command line and a split file
(``data.val = "val.csv"``) all come here. The kind follows from the name: ``.npz``, ``.csv``
(``.tsv``: tab-separated), ``.txt``, ``.idx``/``-ubyte`` (with ``options.labels``), and a
folder: images in class subfolders (``image_folder``) or ``.npy`` samples (``npy_folder``).
"""

from __future__ import annotations

from pathlib import Path

from bpcli.errors import BpcliError

SUFFIXES = {".npz": "npz", ".csv": "csv", ".tsv": "csv", ".txt": "text", ".idx": "idx"}
FILE_KINDS = ("npz", "csv", "text", "idx", "image_folder", "npy_folder")
# the option that names the file, per kind (idx reads images and labels from two files)
PATH_OPTION = {"idx": "images", "image_folder": "root", "npy_folder": "root"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def looks_like_file(name: str) -> bool:
    """True when ``name`` is meant as a path rather than a registered dataset name."""
    return "/" in name or "\\" in name or Path(name).suffix.lower() in SUFFIXES or (
        name.endswith(("-ubyte", "-ubyte.gz"))
    )  # fmt: skip


def _folder_kind(p: Path) -> str:
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
    for d in subdirs:
        if any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir()):
            return "image_folder"
    if any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()):
        raise BpcliError("images must sit in one subfolder per class (root/<class>/*.png)",
                         str(p))  # fmt: skip
    return "npy_folder"


def file_kind(path: str | Path) -> str:
    """The registered loader that reads ``path`` (which must exist)."""
    p = Path(path)
    if p.is_dir():
        return _folder_kind(p)
    if not p.exists():
        raise BpcliError("no such file or folder", str(p))
    name = p.name.lower()
    if name.endswith(("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")):
        return "idx"
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise BpcliError(f"unknown data file type {p.suffix or '(no suffix)'!r}; use .npz, .csv, "
                         ".tsv, .txt, .idx/-ubyte or a folder", str(p))  # fmt: skip
    return kind


def absolute(path: str, base: Path | None) -> str:
    """``path`` made absolute against ``base`` (a spec's folder) or the working directory."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (base / p) if base is not None else p
    return str(p.resolve())


def path_of(kind: str, options: dict) -> str | None:
    """The file a file-kind dataset reads (None for a bundled or generated dataset)."""
    return options.get(PATH_OPTION.get(kind, "path")) if kind in FILE_KINDS else None


def resolve_source(dataset: str, options: dict, base: Path | None = None,
                   registered: bool = False) -> tuple[str, dict]:  # fmt: skip
    """``(kind, options)`` for ``dataset``: a file name becomes its loader with the absolute path
    in its options (so a saved spec works from any folder); a registered name passes through,
    with a relative ``options.path`` made absolute against ``base``. A bare name that is not
    ``registered`` is a file or folder when one of that name exists."""
    options = dict(options)
    if looks_like_file(dataset) or (not registered and Path(absolute(dataset, base)).exists()):
        path = absolute(dataset, base)
        kind = file_kind(path)
        key = PATH_OPTION.get(kind, "path")
        if key in options:
            raise BpcliError(f"the file is given twice: dataset = {dataset!r} and options.{key}",
                             "data.options")  # fmt: skip
        options[key] = path
        if kind == "csv" and path.lower().endswith(".tsv"):
            options.setdefault("delimiter", "\t")
        return kind, options
    if dataset in FILE_KINDS:
        for key in (PATH_OPTION.get(dataset, "path"), "labels"):
            if isinstance(options.get(key), str):
                options[key] = absolute(options[key], base)
    return dataset, options


def split_source(kind: str, options: dict, path: str, base: Path | None) -> tuple[str, dict]:
    """The loader and options of a separate split file (``data.val = "val.csv"``): the main
    dataset's options with this file in place of its file."""
    path = absolute(path, base)
    other = file_kind(path)
    if kind not in FILE_KINDS or other != kind:
        have = f"a {kind} file" if kind in FILE_KINDS else f"the {kind!r} dataset"
        raise BpcliError(f"is a {other} file, but the training data is {have}", path)
    opts = dict(options)
    opts[PATH_OPTION.get(kind, "path")] = path
    if kind == "idx" and "labels" in opts:
        raise BpcliError("a split of IDX files needs its own labels file; use a spec with "
                         "dataset = \"idx\" and split the data by fractions", path)  # fmt: skip
    return kind, opts


def dataset_overrides(name: str | None) -> list[str]:
    """``--dataset NAME|FILE`` as ``--set`` strings: the new data with no options of the old
    (``--set data.options.label=...`` after it adds some); a file relative to the working
    directory."""
    if not name:
        return []
    value = absolute(name, None) if looks_like_file(name) or Path(name).exists() else name
    return [f"data.dataset={_toml_string(value)}", "data.options={}"]


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
