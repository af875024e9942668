"""embedding_bwd against a naive numpy scatter-add."""

import numpy as np
import pytest

from bpcli.kernels.embedding import embedding_bwd


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "n", "dim"), [(1, 1, 1), (5, 40, 3), (100, 7, 16), (4, 0, 2)])
@pytest.mark.parametrize("padding_idx", [-1, 0, 2])
def test_embedding_bwd(dtype, rows, n, dim, padding_idx):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, rows, n)  # few rows, many indices: repeats must accumulate
    g = rng.standard_normal((n, dim)).astype(dtype)
    got = embedding_bwd(idx, g, rows, padding_idx)
    want = np.zeros((rows, dim), np.float64)
    np.add.at(want, idx, g.astype(np.float64))
    if 0 <= padding_idx < rows:
        want[padding_idx] = 0
    assert got.dtype == dtype and got.shape == (rows, dim)
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
