"""Mini-batches of samples, and contiguous windows of a token stream for truncated BPTT."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bpcli.data.dataset import rng_of
from bpcli.errors import BpcliError


def n_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def iter_batches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    shuffle: bool = True,
    rng: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """One epoch of ``(x_batch, y_batch)`` numpy arrays.

    The data are gathered once per epoch in shuffled order, so every batch is a contiguous view
    of that copy (no per-batch fancy indexing). ``rng`` is a Generator (advanced in place, so
    successive epochs differ) or a seed.
    """
    if batch_size < 1:
        raise BpcliError(f"batch_size must be >= 1, got {batch_size}", "batches")
    n = len(x)
    if y is not None and len(y) != n:
        raise BpcliError(f"x has {n} samples but y has {len(y)}", "batches")
    if shuffle:
        perm = rng_of(rng).permutation(n)
        x = x[perm]
        y = None if y is None else y[perm]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        yield x[start:end], None if y is None else y[start:end]


def batchify(ids: np.ndarray, batch: int) -> np.ndarray:
    """Cut a token stream into ``batch`` contiguous parallel streams, shape ``(batch, length)``.

    Row ``b`` holds tokens ``b*length .. (b+1)*length - 1``; the few tokens that do not fill a
    row are dropped. Consecutive windows of a row continue one another, so an RNN's hidden state
    of row ``b`` carries over from one window to the next (the classic Penn Treebank set-up).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise BpcliError(f"a token stream must be 1-D, got shape {ids.shape}", "batchify")
    length = len(ids) // batch if batch >= 1 else 0
    if length < 2:
        raise BpcliError(
            f"{len(ids)} tokens are too few for {batch} streams of at least 2 tokens", "batchify"
        )
    return ids[: batch * length].reshape(batch, length)


def bptt_windows(
    ids: np.ndarray, batch: int, seq_len: int, drop_last: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Windows ``(inputs, targets)``, each ``(batch, t)`` with ``t <= seq_len``, in stream order.

    ``targets[:, j] == inputs[:, j + 1]`` inside a window and the last target of a window is the
    first input of the next one. Keep (and detach) the hidden state between windows; only the
    last window may be shorter, unless ``drop_last``.
    """
    if seq_len < 1:
        raise BpcliError(f"seq_len must be >= 1, got {seq_len}", "bptt_windows")
    data = batchify(ids, batch)
    usable = data.shape[1] - 1  # the last token of a row is only ever a target
    for start in range(0, usable, seq_len):
        t = min(seq_len, usable - start)
        if drop_last and t < seq_len:
            return
        yield data[:, start : start + t], data[:, start + 1 : start + 1 + t]


def n_bptt_windows(n_tokens: int, batch: int, seq_len: int, drop_last: bool = False) -> int:
    usable = n_tokens // batch - 1
    return usable // seq_len if drop_last else -(-usable // seq_len)
