"""Embedding lookup backward: scatter-add of row gradients into the table's gradient."""

from __future__ import annotations

import numpy as np

from bpcli.kernels._jit import kernel


@kernel
def embedding_bwd(indices, grad, num_rows, padding_idx):
    """indices (n,) int64 in [0, num_rows), grad (n, D) float -> dweight (num_rows, D) in grad's
    dtype, row r = sum of grad[k] with indices[k] == r; row padding_idx (if >= 0) stays 0."""
    n, dim = grad.shape
    out = np.zeros((num_rows, dim), dtype=grad.dtype)
    for k in range(n):
        r = indices[k]
        if r == padding_idx:
            continue
        o = out[r]
        g = grad[k]
        for j in range(dim):
            o[j] += g[j]
    return out
