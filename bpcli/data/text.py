"""Character-level text: vocabulary, encoding, and language-model datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.errors import BpcliError


class Vocab:
    """The sorted distinct characters of a text; token id = position in that order.

    Args:
        chars: the characters, in id order (a string, as stored in checkpoints).
    """

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars) or not chars:
            raise BpcliError("a vocabulary needs distinct characters", "vocab")
        self.chars = chars
        self._codes = np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32)
        self._order = np.argsort(self._codes)
        self._sorted = self._codes[self._order]

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters)"

    def encode(self, text: str, where: str = "vocab") -> np.ndarray:
        """int64 ids of ``text``; a character outside the vocabulary is an error naming it."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        pos = np.minimum(np.searchsorted(self._sorted, codes), len(self) - 1)
        bad = np.flatnonzero(self._sorted[pos] != codes)
        if bad.size:
            i = int(bad[0])
            raise BpcliError(
                f"character {text[i]!r} at offset {i} is not in the vocabulary "
                f"({bad.size} such characters)",
                where,
            )
        return self._order[pos].astype(np.int64)

    def decode(self, ids: np.ndarray) -> str:
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise BpcliError(f"token ids must be in 0..{len(self) - 1}", "vocab")
        return self._codes[ids].astype("<u4").tobytes().decode("utf-32-le")


def text_dataset(text: str, name: str = "text", vocab: Vocab | None = None, **meta) -> Dataset:
    """A language dataset: ``x`` = ids of ``text[:-1]``, ``y`` = ids of ``text[1:]``.

    ``classes`` holds the vocabulary's characters, so ``Vocab("".join(ds.classes))`` restores it.
    """
    where = meta.get("source", name)
    if len(text) < 2:
        raise BpcliError(f"the text has {len(text)} characters; a language model needs 2+", where)
    vocab = vocab or Vocab.from_text(text)
    ids = vocab.encode(text, where)
    return Dataset(ids[:-1], ids[1:], "language", name, len(vocab), tuple(vocab.chars), dict(meta))


def vocab_of(ds: Dataset) -> Vocab:
    if ds.task != "language" or ds.classes is None:
        raise BpcliError("not a character language dataset", ds.name)
    return Vocab("".join(ds.classes))


def stream_of(ds: Dataset) -> np.ndarray:
    """The whole token stream of a language dataset (``x`` plus the last target)."""
    return np.concatenate([ds.x, ds.y[-1:]])


def load_text(path: str | Path, encoding: str = "utf-8", name: str | None = None) -> Dataset:
    """A user's plain-text file as a character language dataset."""
    p = Path(path)
    try:
        text = p.read_text(encoding=encoding)
    except FileNotFoundError:
        raise BpcliError("no such file", str(p)) from None
    except UnicodeDecodeError as e:
        raise BpcliError(f"not {encoding} text: byte {e.start} cannot be decoded", str(p)) from None
    return text_dataset(text, name or p.stem, source=str(p))
