"""Train/validation/test splits (seeded, optionally stratified) and standardisation."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bpcli.data.dataset import Dataset, rng_of
from bpcli.errors import BpcliError


class Splits(NamedTuple):
    train: Dataset
    val: Dataset | None
    test: Dataset | None


def _count(part: float | int, n: int, what: str) -> int:
    """A fraction of ``n`` (float in [0, 1)) or a count (int) as a count."""
    if isinstance(part, bool) or not isinstance(part, int | float | np.integer | np.floating):
        raise BpcliError(f"{what} must be a fraction or a count, got {part!r}", "split")
    if isinstance(part, float | np.floating):
        if not 0.0 <= part < 1.0:
            raise BpcliError(f"{what} fraction must be in [0, 1), got {part}", "split")
        return round(part * n)
    if part < 0:
        raise BpcliError(f"{what} count must be >= 0, got {part}", "split")
    return int(part)


def _allocate(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` across groups in proportion to ``sizes`` (largest remainder)."""
    exact = total * sizes / sizes.sum()
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return np.minimum(out, sizes)


def split_indices(
    n: int,
    val: float | int = 0.1,
    test: float | int = 0.0,
    seed: int | np.random.Generator | None = 0,
    stratify: np.ndarray | None = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint index arrays (train, val, test) covering ``range(n)``.

    Args:
        n: number of samples.
        val, test: fraction of ``n`` (float) or number of samples (int).
        seed: seed or Generator for the shuffle.
        stratify: labels ``(n,)``: each class is split in the same proportions.
        shuffle: False keeps the order (train first, then val, then test), as a text stream needs.
    """
    n_val, n_test = _count(val, n, "val"), _count(test, n, "test")
    if n_val + n_test >= n:
        raise BpcliError(
            f"val ({n_val}) + test ({n_test}) samples leave none of {n} for training", "split"
        )
    if stratify is None or not shuffle:
        order = rng_of(seed).permutation(n) if shuffle else np.arange(n)
        n_train = n - n_val - n_test
        return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    rng = rng_of(seed)
    labels = np.asarray(stratify).reshape(n, -1)[:, 0]
    classes, inverse = np.unique(labels, return_inverse=True)
    groups = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    sizes = np.array([len(g) for g in groups])
    per_val = _allocate(n_val, sizes)
    per_test = _allocate(n_test, sizes - per_val)
    parts: tuple[list, list, list] = ([], [], [])
    for g, v, t in zip(groups, per_val, per_test, strict=True):
        parts[1].append(g[:v])
        parts[2].append(g[v : v + t])
        parts[0].append(g[v + t :])
    # Shuffle again so a split does not come sorted by class.
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def split(
    ds: Dataset,
    val: float | int = 0.1,
    test: float | int = 0.0,
    seed: int | np.random.Generator | None = 0,
    stratify: bool = False,
) -> Splits:
    """Split a dataset; a language stream is cut into contiguous parts (never shuffled)."""
    language = ds.task == "language"
    if stratify and ds.task != "classification":
        raise BpcliError(
            f"stratify needs a classification dataset, {ds.name} is {ds.task}", "split"
        )
    idx = split_indices(
        len(ds), val, test, seed, stratify=ds.y if stratify else None, shuffle=not language
    )
    parts = []
    for i, part in zip(idx, ("train", "val", "test"), strict=True):
        if len(i) == 0:
            parts.append(None)
            continue
        # A language part stays a view of one contiguous stretch of the stream.
        where = slice(int(i[0]), int(i[-1]) + 1) if language else i
        parts.append(ds.subset(where, f"{ds.name}/{part}"))
    return Splits(*parts)


class Standardizer:
    """Feature standardisation ``(x - mean) / std`` fitted on the training set only.

    Args:
        axis: axes reduced when fitting; default 0 gives a mean and std per feature. For images
            ``(n, c, h, w)`` use ``(0, 2, 3)`` for one per channel.
        eps: std below this counts as constant; such features are only centred.
    """

    def __init__(self, axis: int | tuple[int, ...] = 0, eps: float = 1e-8):
        self.axis = axis
        self.eps = eps
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        self.mean = x.mean(axis=self.axis, keepdims=True)
        std = x.std(axis=self.axis, keepdims=True)
        self.std = np.where(std < self.eps, 1.0, std)
        return self

    def transform(self, x: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        if self.mean is None:
            raise BpcliError("call fit() on the training data first", "Standardizer")
        shape, expect = tuple(np.shape(x)[1:]), self.mean.shape[1:]
        if len(shape) != len(expect) or any(
            e not in (1, s) for e, s in zip(expect, shape, strict=True)
        ):
            raise BpcliError(
                f"features of shape {shape} do not match the fitted {expect}", "Standardizer"
            )
        return ((np.asarray(x) - self.mean) / self.std).astype(dtype)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x) * self.std + self.mean).astype(np.asarray(x).dtype)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint stores to apply the same standardisation at prediction time."""
        return {"axis": self.axis, "eps": self.eps, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Standardizer:
        axis = state["axis"]
        s = cls(tuple(axis) if isinstance(axis, list) else axis, state["eps"])
        s.mean, s.std = np.asarray(state["mean"]), np.asarray(state["std"])
        return s


def standardize(splits: Splits, axis: int | tuple[int, ...] = 0) -> tuple[Splits, Standardizer]:
    """Fit on ``splits.train``, apply to every part; returns float32 features."""
    sc = Standardizer(axis).fit(splits.train.x)
    parts = [None if p is None else p.with_x(sc.transform(p.x)) for p in splits]
    return Splits(*parts), sc
