"""Embedding: a lookup table of trainable rows, as torch.nn.Embedding."""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.module import Module, Parameter


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer indices of any shape.

    The weight starts N(0, 1) with the ``padding_idx`` row zeroed; that row gets no gradient.
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype=None
    ):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise BpcliError(
                f"padding_idx {padding_idx} out of range for {num_embeddings} embeddings",
                "Embedding",
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.dtype = np.dtype(dtype or np.float32)
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), self.dtype))
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        if getattr(input, "dtype", np.dtype(np.int64)).kind not in "iu":
            raise BpcliError(
                f"expects integer indices, got {input.dtype} of shape {tuple(input.shape)}",
                "Embedding",
            )
        return F.embedding(input, self.weight, self.padding_idx)

    def get_config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx, "dtype": self.dtype.name}  # fmt: skip


LAYERS = {"embedding": Embedding}
