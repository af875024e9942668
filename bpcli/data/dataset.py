"""Dataset: arrays x and y with what they mean (task, classes, name) and a content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bpcli.errors import BpcliError

TASKS = ("classification", "regression", "language")


@dataclass(eq=False)
class Dataset:
    """Samples ``x`` (first axis = sample) with targets ``y``.

    Args:
        x: features, shape ``(n, *feature_shape)``.
        y: targets: int64 labels ``(n,)`` for classification and language, floats for regression.
        task: ``"classification"``, ``"regression"`` or ``"language"`` (``x`` and ``y`` are then
            the token stream and the same stream shifted by one, both ``(n,)``).
        name: shown in messages and manifests.
        n_classes: number of classes (vocabulary size for language); inferred from ``y`` if None.
        classes: optional class names (or the vocabulary's characters for language).
        meta: anything else worth keeping (source file, generator options).
    """

    x: np.ndarray
    y: np.ndarray
    task: str = "classification"
    name: str = "dataset"
    n_classes: int | None = None
    classes: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x, self.y = np.asarray(self.x), np.asarray(self.y)
        where = self.meta.get("source", self.name)
        if self.task not in TASKS:
            raise BpcliError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}", where)
        if self.x.ndim == 0 or len(self.x) == 0:
            raise BpcliError("the dataset is empty (no samples)", where)
        if len(self.x) != len(self.y):
            raise BpcliError(
                f"x has {len(self.x)} samples but y has {len(self.y)} (x {self.x.shape}, "
                f"y {self.y.shape})",
                where,
            )
        if self.task == "regression":
            return
        if self.y.dtype.kind not in "iu":
            raise BpcliError(
                f"{self.task} labels must be integers, got dtype {self.y.dtype}", where
            )
        self.y = self.y.astype(np.int64, copy=False)
        if self.n_classes is None:
            self.n_classes = len(self.classes) if self.classes else int(self.y.max()) + 1
        check_labels(self.y, self.n_classes, where)
        if self.classes is not None and len(self.classes) != self.n_classes:
            raise BpcliError(
                f"{len(self.classes)} class names given for {self.n_classes} classes", where
            )

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        classes = f", n_classes={self.n_classes}" if self.n_classes else ""
        return (
            f"Dataset({self.name!r}, {self.task}, n={len(self)}, "
            f"x {self.x.dtype}{list(self.feature_shape)}, y {self.y.dtype}{classes})"
        )

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return tuple(self.y.shape[1:])

    def content_hash(self) -> str:
        """sha256 of task, dtypes, shapes and bytes of x and y: equal data, equal hash."""
        h = hashlib.sha256(self.task.encode())
        for arr in (self.x, self.y):
            h.update(f"|{arr.dtype.str}{arr.shape}|".encode())
            h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
        return h.hexdigest()

    def subset(self, index: np.ndarray, name: str | None = None) -> Dataset:
        """The samples at ``index`` (an int array or slice), with the same classes and meta."""
        return replace(self, x=self.x[index], y=self.y[index], name=name or self.name)

    def shuffled(self, seed: int | np.random.Generator | None = 0) -> Dataset:
        return self.subset(rng_of(seed).permutation(len(self)))

    def with_x(self, x: np.ndarray) -> Dataset:
        """The same targets with new features (e.g. standardised, flattened)."""
        return replace(self, x=x)

    def flatten(self) -> Dataset:
        """Features reshaped to ``(n, prod(feature_shape))`` for a multilayer perceptron."""
        return self.with_x(self.x.reshape(len(self), -1))

    def class_counts(self) -> np.ndarray:
        if self.task == "regression":
            raise BpcliError("a regression dataset has no classes", self.name)
        return np.bincount(self.y.reshape(-1), minlength=self.n_classes)

    def describe(self) -> dict[str, Any]:
        """What a run manifest records about its data."""
        return {
            "name": self.name,
            "task": self.task,
            "n_samples": len(self),
            "feature_shape": list(self.feature_shape),
            "x_dtype": str(self.x.dtype),
            "y_dtype": str(self.y.dtype),
            "n_classes": self.n_classes,
            "sha256": self.content_hash(),
        }


def rng_of(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def check_labels(y: np.ndarray, n_classes: int, where: str) -> None:
    """BpcliError naming the first label outside ``0..n_classes-1``."""
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise BpcliError(
            f"label {int(y.reshape(-1)[i])} of sample {i} is out of range 0..{n_classes - 1} "
            f"({bad.size} labels out of range)",
            where,
        )


def one_hot(y: np.ndarray, n_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """``(n,)`` int labels to an ``(n, n_classes)`` array of 0s and 1s."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise BpcliError(f"one_hot needs integer labels, got dtype {y.dtype}", "one_hot")
    check_labels(y, n_classes, "one_hot")
    out = np.zeros((*y.shape, n_classes), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def align_classes(part: Dataset, classes, n_classes: int, where: str) -> Dataset:
    """``part`` with its labels numbered as a model trained with ``classes`` (names, or None for
    plain ids) and ``n_classes`` numbers them: a split file or a file to evaluate on may lack
    some classes, or list them in another order."""
    src = part.meta.get("source", part.name)
    if classes and part.classes and tuple(part.classes) != tuple(classes):
        unknown = [c for c in part.classes if c not in classes]
        if unknown:
            raise BpcliError(f"{src}: class {unknown[0]!r} is not one the model knows "
                             f"({', '.join(classes)})", where)  # fmt: skip
        remap = np.array([list(classes).index(c) for c in part.classes], dtype=np.int64)
        return replace(part, y=remap[part.y], n_classes=n_classes, classes=tuple(classes))
    if part.n_classes > n_classes:
        raise BpcliError(f"{src}: labels up to {part.n_classes - 1}, but the model has "
                         f"{n_classes} classes", where)  # fmt: skip
    return replace(part, n_classes=n_classes, classes=tuple(classes) if classes else None)
