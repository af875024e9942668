import numpy as np
import pytest

from bpcli.data import circles, digits1d, moons, sine, spirals, xor
from bpcli.errors import BpcliError

CLASSIFIERS = [
    (spirals, 3, dict(n_samples=301, n_classes=3)),
    (spirals, 5, dict(n_samples=250, n_classes=5, noise=0.0)),
    (xor, 2, dict(n_samples=203)),
    (moons, 2, dict(n_samples=201)),
    (circles, 2, dict(n_samples=200, factor=0.3)),
]


@pytest.mark.parametrize(("make", "k", "kw"), CLASSIFIERS)
def test_2d_classification_sets(make, k, kw):
    ds = make(seed=3, **kw)
    n = kw["n_samples"]
    assert ds.x.shape == (n, 2) and ds.x.dtype == np.float32
    assert ds.y.shape == (n,) and ds.y.dtype == np.int64
    assert ds.n_classes == k and ds.task == "classification"
    counts = ds.class_counts()
    assert counts.sum() == n and counts.max() - counts.min() <= (2 if make is xor else 1)
    assert np.all(np.isfinite(ds.x))
    assert len(set(ds.y[:20].tolist())) > 1  # interleaved, not sorted by class


@pytest.mark.parametrize(("make", "k", "kw"), CLASSIFIERS)
def test_seed_determinism(make, k, kw):
    a, b, c = make(seed=7, **kw), make(seed=7, **kw), make(seed=8, **kw)
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_xor_labels_follow_quadrants():
    ds = xor(n_samples=400, noise=0.05, seed=0)
    np.testing.assert_array_equal(ds.y, (ds.x[:, 0] * ds.x[:, 1] < 0).astype(np.int64))


def test_circles_radii():
    ds = circles(n_samples=100, noise=0.0, factor=0.4)
    r = np.hypot(ds.x[:, 0], ds.x[:, 1])
    np.testing.assert_allclose(r, np.where(ds.y == 1, 0.4, 1.0), rtol=1e-6)


def test_sine_regression():
    ds = sine(n_samples=500, noise=0.0, seed=1)
    assert ds.task == "regression" and ds.x.shape == ds.y.shape == (500, 1)
    assert ds.x.dtype == ds.y.dtype == np.float32
    np.testing.assert_allclose(ds.y, np.sin(ds.x), atol=1e-6)
    noisy = sine(n_samples=2000, noise=0.1, seed=1)
    assert 0.08 < float(np.std(noisy.y - np.sin(noisy.x))) < 0.12


def test_digits1d_shapes_balance_and_determinism():
    ds = digits1d(n_samples=1003, seed=5)
    assert ds.x.shape == (1003, 1, 40) and ds.x.dtype == np.float32
    assert ds.class_counts().tolist() == [101, 101, 101] + [100] * 7
    assert np.all(np.isfinite(ds.x)) and 0.2 < float(np.abs(ds.x).max()) < 3.0
    assert ds.content_hash() == digits1d(n_samples=1003, seed=5).content_hash()
    flat = digits1d(n_samples=1003, seed=5, flatten=True, length=60)
    assert flat.x.shape == (1003, 60)


def test_digits1d_templates_are_shifted():
    # The same class at different offsets: a shape's peak position must vary a lot.
    ds = digits1d(n_samples=500, corr_noise=0.0, white_noise=0.0, shear=0.0, seed=0)
    peaks = ds.x[ds.y == 1, 0].argmax(axis=1)
    assert peaks.max() - peaks.min() > 20


@pytest.mark.parametrize(
    ("make", "kw"),
    [(spirals, dict(n_samples=2, n_classes=3)), (circles, dict(factor=1.5)),
     (sine, dict(n_samples=0)), (digits1d, dict(width=(30, 100)))],
)  # fmt: skip
def test_bad_options(make, kw):
    with pytest.raises(BpcliError):
        make(**kw)
