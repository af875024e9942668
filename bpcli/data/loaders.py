"""Loaders for a user's own files: NPZ, CSV and folders of ``.npy`` samples (IDX: idx.py).

Every mistake in a file is a BpcliError whose ``where`` is that file's path.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.errors import BpcliError

LABEL_FILES = ("labels.csv", "labels.txt")


def _exists(p: Path, what: str = "file") -> None:
    if not p.exists():
        raise BpcliError(f"no such {what}", str(p))


def _targets(y: np.ndarray, task: str | None, where: str) -> tuple[np.ndarray, str]:
    """Decide the task from float labels when not given; int64 labels or (n, 1) float32."""
    integral = y.dtype.kind in "iub" or bool(np.all(np.isfinite(y) & (y == np.round(y))))
    task = task or ("classification" if integral else "regression")
    if task == "regression":
        y = y.astype(np.float32)
        return (y[:, None] if y.ndim == 1 else y), task
    if not integral:
        i = int(np.flatnonzero(~(np.isfinite(y) & (y == np.round(y))))[0])
        raise BpcliError(f"label {y[i]!r} of sample {i} is not an integer class "
                         "(pass task='regression' for real-valued targets)", where)  # fmt: skip
    return y.astype(np.int64), task


def load_npz(
    path: str | Path, x: str = "x", y: str = "y", task: str | None = None,
    n_classes: int | None = None, name: str | None = None,
) -> Dataset:  # fmt: skip
    """A ``.npz`` file holding features and targets under the names ``x`` and ``y``.

    ``task`` defaults to classification when every target is an integer, else regression.
    """
    p = Path(path)
    _exists(p)
    try:
        with np.load(p, allow_pickle=False) as f:
            names = list(f.files)
            missing = [k for k in (x, y) if k not in names]
            if missing:
                raise BpcliError(f"no array named {missing[0]!r}; it holds "
                                 f"{', '.join(names) or 'no arrays'}", str(p))  # fmt: skip
            xs, ys = f[x], f[y]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, BpcliError):
            raise
        raise BpcliError(f"not a readable .npz file ({e})", str(p)) from None
    if len(xs) != len(ys):
        raise BpcliError(f"{x!r} has {len(xs)} samples but {y!r} has {len(ys)}", str(p))
    if len(xs) == 0:
        raise BpcliError("the dataset is empty (0 samples)", str(p))
    check_array(xs, x, str(p))
    check_array(ys, y, str(p))
    ys, task = _targets(ys, task, str(p))
    return Dataset(xs, ys, task, name or p.stem, n_classes, meta={"source": str(p)})


def _csv_rows(p: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise BpcliError("no such file", str(p)) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise BpcliError(f"not a readable CSV text file ({e})", str(p)) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(
    path: str | Path, label: int | str = -1, header: bool | None = None, delimiter: str = ",",
    task: str | None = None, n_classes: int | None = None, name: str | None = None,
) -> Dataset:  # fmt: skip
    """A numeric CSV file: one sample per line, one column holds the target.

    Args:
        label: the target column, by index (negative counts from the end) or by header name.
        header: whether the first line names the columns; None guesses (a non-number in it).
        task: ``"classification"`` (integer labels) or ``"regression"``; None guesses from the
            labels (all integers: classification).
        n_classes: labels must lie in ``0..n_classes-1``; default max label + 1.
    """
    p = Path(path)
    where = str(p)
    names, body = _csv_table(p, delimiter, header, label)
    width = len(names) if names else len(body[0][1])
    col = _label_column(label, names, width, where)
    if width < 2:
        raise BpcliError("need at least 2 columns (features and a label)", where)
    labels = [row[col].strip() if len(row) == width else "" for _, row in body]
    words = [not _is_number(v) for v in labels]
    table = _numbers(body, width, names, where, skip=[col if w else None for w in words])
    classes = None
    if any(words):
        if not all(words):
            i = words.index(not words[0])
            raise BpcliError(f"line {body[i][0]}, column {_column(col, names)}: label "
                             f"{labels[i]!r} is a {'name' if words[i] else 'number'} but "
                             f"line {body[0][0]}'s {labels[0]!r} is not: labels must be all "
                             "class names or all numbers", where)  # fmt: skip
        if task == "regression":
            raise BpcliError(f"line {body[0][0]}: label {labels[0]!r} is not a number, but "
                             "task = 'regression'", where)  # fmt: skip
        classes = tuple(sorted(set(labels)))
        table[:, col] = [classes.index(v) for v in labels]
        n_classes = n_classes or len(classes)
    y, task = _targets(table[:, col], task, where)
    x = np.delete(table, col, axis=1).astype(np.float32)
    if task == "classification" and classes is None:
        lines = [line for line, _ in body]
        bad = np.flatnonzero((y < 0) | (y >= n_classes if n_classes else y < 0))
        if bad.size:
            i = int(bad[0])
            top = f"0..{n_classes - 1}" if n_classes else "0 and up"
            raise BpcliError(f"line {lines[i]}: label {y[i]} is out of range {top}", where)
    meta = {"source": where, "columns": names, "label": names[col] if names else col}
    return Dataset(x, y, task, name or p.stem, n_classes, classes, meta=meta)


def _csv_table(p: Path, delimiter: str, header: bool | None, label) -> tuple[list | None, list]:
    """``(column names or None, data rows)``; a header is guessed when a cell of the first line
    outside the label column is not a number (a label column named by text implies one)."""
    rows = _csv_rows(p, delimiter)
    if not rows:
        raise BpcliError("the dataset is empty: no data lines", str(p))
    if header is None:
        first = rows[0][1]
        skip = None if isinstance(label, str) or label is None else label % max(len(first), 1)
        header = isinstance(label, str) or not all(
            _is_number(c) for j, c in enumerate(first) if j != skip
        )  # fmt: skip
    names = [c.strip() for c in rows[0][1]] if header else None
    body = rows[1:] if header else rows
    if not body:
        raise BpcliError("the dataset is empty: no data lines", str(p))
    return names, body


def _label_column(label: int | str, names: list[str] | None, width: int, where: str) -> int:
    if isinstance(label, str):
        if names is None or label not in names:
            cols = f"columns are {', '.join(names)}" if names else "the file has no header line"
            raise BpcliError(f"no column named {label!r}; {cols}", where)
        return names.index(label)
    if not -width <= label < width:
        raise BpcliError(f"label column {label} out of range for {width} columns", where)
    return label % width


def _numbers(body, width: int, names, where: str, skip=None) -> np.ndarray:
    """The rows as a float64 table; ``skip[i]`` is a column of row i left 0 (a class name)."""
    table = np.zeros((len(body), width), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        if len(row) != width:
            raise BpcliError(f"line {line} has {len(row)} fields, expected {width}", where)
        if skip is not None and skip[i] is not None:
            row = [*row[: skip[i]], "0", *row[skip[i] + 1 :]]
        try:
            table[i] = [float(c) for c in row]
        except ValueError:
            j = next(j for j, c in enumerate(row) if not _is_number(c))
            raise BpcliError(f"line {line}, column {_column(j, names)}: {row[j].strip()!r} is "
                             "not a number", where) from None  # fmt: skip
    _check_finite(table, [line for line, _ in body], names, where)
    return table


def read_csv_features(path: str | Path, n_features: int, label: int | str = -1,
                      header: bool | None = None, delimiter: str = ",") -> np.ndarray:  # fmt: skip
    """The features of a CSV file to predict on: all columns when there are ``n_features``,
    else all but the ``label`` column (as training read the file)."""
    p = Path(path)
    names, body = _csv_table(p, delimiter, header, label if n_features else None)
    width = len(names) if names else len(body[0][1])
    if width == n_features:
        return _numbers(body, width, names, str(p)).astype(np.float32)
    if width != n_features + 1:
        raise BpcliError(f"{width} columns, but the model takes {n_features} features (and the "
                         "file may hold one label column more)", str(p))  # fmt: skip
    col = _label_column(label, names, width, str(p))
    skip = [col] * len(body)
    return np.delete(_numbers(body, width, names, str(p), skip), col, axis=1).astype(np.float32)


def _column(j: int, names: list[str] | None) -> str:
    return f"{j + 1} ({names[j]})" if names else str(j + 1)


def _check_finite(table: np.ndarray, lines: list[int], names: list[str] | None, where: str):
    """NaN and Inf are refused at load, naming the first one's line and column."""
    bad = ~np.isfinite(table)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise BpcliError(f"line {lines[i]}, column {_column(j, names)}: {table[i, j]} is not a "
                         f"finite number ({int(bad.sum())} such values)", where)  # fmt: skip


def check_array(a: np.ndarray, what: str, where: str) -> None:
    """A numeric array with only finite values: complex, object, text and NaN/Inf are refused,
    naming the first bad sample and its position within the sample."""
    if a.dtype.kind not in "biuf":
        kinds = {"c": "complex", "U": "text", "S": "bytes", "O": "Python objects"}
        raise BpcliError(f"array {what!r} holds {kinds.get(a.dtype.kind, str(a.dtype))} values; "
                         "expected real numbers", where)  # fmt: skip
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(v[0]) for v in np.nonzero(bad))
            at = f", position {list(idx[1:])}" if len(idx) > 1 else ""
            raise BpcliError(f"array {what!r}, sample {idx[0]}{at}: {a[idx]} is not finite "
                             f"({int(bad.sum())} such values)", where)  # fmt: skip


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BpcliError(f"not a readable .npy file ({e})", str(p)) from None


def _stack(files: list[Path], where: str) -> np.ndarray:
    if not files:
        raise BpcliError("the dataset is empty: no .npy files found", where)
    arrays = [_load_npy(f) for f in files]
    first = arrays[0]
    for f, a in zip(files, arrays, strict=True):
        if a.shape != first.shape:
            raise BpcliError(f"shape {a.shape} differs from {first.shape} of {files[0].name}",
                             str(f))  # fmt: skip
    return np.stack(arrays)


def _read_label_file(p: Path) -> dict[str, str]:
    labels: dict[str, str] = {}
    for line, row in _csv_rows(p, ","):
        if len(row) != 2:
            raise BpcliError(f"line {line} has {len(row)} fields, expected 2 (file,label)", str(p))
        file, lab = row[0].strip(), row[1].strip()
        if line == 1 and not file.endswith(".npy"):
            continue  # a header line such as "file,label"
        if file in labels:
            raise BpcliError(f"line {line}: {file} is listed twice", str(p))
        labels[file] = lab
    return labels


def load_npy_folder(
    root: str | Path, labels: str | Path | None = None, task: str | None = None,
    name: str | None = None,
) -> Dataset:  # fmt: skip
    """A folder of ``.npy`` files, one sample per file, all of the same shape.

    Two layouts:

    - class subfolders: ``root/<class name>/*.npy``; classes are numbered in sorted name order.
    - a labels file: ``root/*.npy`` with ``root/labels.csv`` (or ``labels.txt``) holding lines
      ``file,label`` (an optional first line ``file,label`` is a header). Labels that are all
      integers give classification, other numbers regression, and words are class names,
      numbered in sorted order.

    Files are read in sorted name order, so the dataset is the same on every machine.
    """
    root = Path(root)
    _exists(root, "folder")
    if not root.is_dir():
        raise BpcliError("expected a folder of .npy files", str(root))
    label_file = Path(labels) if labels else next(
        (root / n for n in LABEL_FILES if (root / n).is_file()), None
    )  # fmt: skip
    meta = {"source": str(root)}
    if label_file is None:
        dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not dirs:
            raise BpcliError("no class subfolders and no labels.csv: nothing to load", str(root))
        per_class = [sorted(d.glob("*.npy")) for d in dirs]
        for d, files in zip(dirs, per_class, strict=True):
            if not files:
                raise BpcliError("class folder holds no .npy files (nor images)", str(d))
        x = _stack([f for files in per_class for f in files], str(root))
        y = np.repeat(np.arange(len(dirs)), [len(f) for f in per_class])
        classes = tuple(d.name for d in dirs)
        return Dataset(x, y, "classification", name or root.name, len(dirs), classes, meta)
    _exists(label_file)
    table = _read_label_file(label_file)
    files = sorted(root.glob("*.npy"))
    for f in files:
        if f.name not in table:
            raise BpcliError(f"{f.name} has no line in {label_file.name}", str(label_file))
    for listed in table:
        if not (root / listed).is_file():
            raise BpcliError(f"lists {listed}, which is not in {root}", str(label_file))
    x = _stack(files, str(root))
    raw = [table[f.name] for f in files]
    classes = None
    if all(_is_number(v) for v in raw):
        y, task = _targets(np.array([float(v) for v in raw]), task, str(label_file))
    else:
        classes = tuple(sorted(set(raw)))
        y, task = np.array([classes.index(v) for v in raw], dtype=np.int64), "classification"
    meta["labels"] = str(label_file)
    n_classes = len(classes) if classes else None
    return Dataset(x, y, task, name or root.name, n_classes, classes, meta)
