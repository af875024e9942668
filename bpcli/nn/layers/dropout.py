"""Dropout: zero elements with probability p while training, identity in eval mode."""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.module import Module


class Dropout(Module):
    """Inverted dropout (kept elements scaled by 1/(1-p)), active only in train mode.

    Args:
        p: probability of zeroing an element, in [0, 1].
        seed: makes the masks reproducible: the layer draws them from its own generator seeded
            with ``seed`` (successive calls still differ). Without it (and without
            ``generator``) masks come from the engine's default generator (``bp.manual_seed``).
        generator: a numpy Generator to draw the masks from (not part of the config).
    """

    def __init__(self, p: float = 0.5, seed: int | None = None, generator=None):
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise BpcliError(f"p must be between 0 and 1, got {p}", "Dropout")
        self.p, self.seed = float(p), seed
        if generator is None and seed is not None:
            generator = np.random.default_rng(seed)
        self.generator = generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def get_config(self) -> dict:
        return {"p": self.p, "seed": self.seed}


LAYERS = {"dropout": Dropout}
