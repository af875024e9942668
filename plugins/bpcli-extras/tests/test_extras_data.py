"""The checkerboard dataset: shape, balance, labels, determinism."""

import numpy as np
import pytest
from bpcli.data import Dataset
from bpcli.errors import BpcliError

from bpcli_extras.data import checkerboard


@pytest.mark.parametrize("n,tiles", [(400, 4), (101, 3), (2, 2), (1000, 8)])
def test_shape_dtype_and_balance(n, tiles):
    ds = checkerboard(n_samples=n, tiles=tiles)
    assert isinstance(ds, Dataset) and ds.name == "checkerboard" and ds.task == "classification"
    assert ds.x.shape == (n, 2) and ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.n_classes == 2 and list(ds.class_counts()) == [n - n // 2, n // 2]
    assert np.all(ds.x >= -1) and np.all(ds.x <= 1)
    assert ds.meta == dict(n_samples=n, tiles=tiles, noise=0.0, seed=0)


def test_labels_are_the_cell_colours_and_every_cell_is_used():
    ds = checkerboard(n_samples=2000, tiles=4)
    cell = np.floor((ds.x.astype(np.float64) + 1) / 0.5).astype(int).clip(0, 3)
    np.testing.assert_array_equal((cell[:, 0] + cell[:, 1]) % 2, ds.y)
    assert len({tuple(c) for c in cell}) == 16


def test_classes_are_interleaved():
    assert 0 < checkerboard(400).y[:20].mean() < 1


def test_deterministic_per_seed():
    a, b, c = checkerboard(seed=3), checkerboard(seed=3), checkerboard(seed=4)
    assert a.content_hash() == b.content_hash() != c.content_hash()
    noisy = checkerboard(noise=0.1, seed=3)
    assert noisy.content_hash() != a.content_hash() and (np.abs(noisy.x) > 1).any()


@pytest.mark.parametrize("kw,match", [({"tiles": 1}, "tiles"), ({"n_samples": 1}, "n_samples"),
                                      ({"noise": -0.5}, "noise")])  # fmt: skip
def test_bad_arguments(kw, match):
    with pytest.raises(BpcliError, match=match):
        checkerboard(**kw)
