import numpy as np
import pytest

from bpcli.data import (
    Dataset,
    Standardizer,
    batchify,
    bptt_windows,
    iter_batches,
    n_batches,
    n_bptt_windows,
    one_hot,
    spirals,
    split,
    split_indices,
    standardize,
    stream_of,
    text_dataset,
)
from bpcli.errors import BpcliError


def labelled(n=100, k=4):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return Dataset(x, np.arange(n) % k, name="toy")


def test_dataset_validation():
    with pytest.raises(BpcliError, match="empty"):
        Dataset(np.zeros((0, 2)), np.zeros(0, dtype=np.int64))
    with pytest.raises(BpcliError, match="5 samples but y has 4"):
        Dataset(np.zeros((5, 2)), np.zeros(4, dtype=np.int64))
    with pytest.raises(BpcliError, match=r"label 3 of sample 1 is out of range 0\.\.2"):
        Dataset(np.zeros((2, 2)), np.array([0, 3]), n_classes=3)
    with pytest.raises(BpcliError, match="must be integers"):
        Dataset(np.zeros((2, 2)), np.array([0.5, 1.0]))
    ds = labelled()
    assert ds.n_classes == 4 and ds.feature_shape == (3,) and len(ds) == 100


def test_content_hash_tracks_data():
    a, b = labelled(), labelled()
    assert a.content_hash() == b.content_hash()
    b.x[0, 0] += 1
    assert a.content_hash() != b.content_hash()
    assert a.describe()["sha256"] == a.content_hash()


@pytest.mark.parametrize(("val", "test"), [(0.2, 0.1), (10, 5), (0.0, 0.3), (1, 0)])
def test_split_disjoint_and_covering(val, test):
    tr, va, te = split_indices(97, val, test, seed=1)
    allidx = np.concatenate([tr, va, te])
    assert sorted(allidx.tolist()) == list(range(97))
    want_val = round(val * 97) if isinstance(val, float) else val
    assert len(va) == want_val


def test_stratified_split_keeps_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    tr, va, te = split_indices(100, 0.2, 0.1, seed=0, stratify=y)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    assert np.bincount(y[va]).tolist() == [12, 6, 2]
    assert np.bincount(y[te]).tolist() == [6, 3, 1]


def test_split_dataset_seeded():
    ds = spirals(n_samples=200)
    a = split(ds, val=0.25, test=0.25, seed=4, stratify=True)
    b = split(ds, val=0.25, test=0.25, seed=4, stratify=True)
    assert [len(p) for p in a] == [100, 50, 50]
    assert all(p.content_hash() == q.content_hash() for p, q in zip(a, b, strict=True))
    assert split(ds, val=0.25, seed=4).test is None
    with pytest.raises(BpcliError, match="none of 200 for training"):
        split(ds, val=0.5, test=100)


def test_language_split_is_contiguous():
    ds = text_dataset("abcdefghij" * 10)
    parts = split(ds, val=0.1, test=0.1)
    joined = np.concatenate([stream_of(p)[:-1] for p in parts] + [stream_of(parts.test)[-1:]])
    np.testing.assert_array_equal(joined, stream_of(ds))


def test_standardize_fits_on_train_only():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 4)).astype(np.float32)
    x[:, 3] = 7.0  # a constant feature must not divide by zero
    ds = Dataset(x, np.zeros(200, dtype=np.int64), n_classes=2)
    parts, sc = standardize(split(ds, val=0.3, seed=0))
    np.testing.assert_allclose(parts.train.x[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(parts.train.x[:, :3].std(0), 1, atol=1e-4)
    assert parts.val.x.dtype == np.float32 and np.all(parts.train.x[:, 3] == 0)
    again = Standardizer.from_state_dict(sc.state_dict())
    np.testing.assert_array_equal(again.transform(parts.val.x), sc.transform(parts.val.x))
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(x)), x, rtol=1e-5)
    with pytest.raises(BpcliError, match="do not match"):
        sc.transform(np.zeros((2, 5)))


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2).dtype == np.float32
    with pytest.raises(BpcliError, match="out of range"):
        one_hot(np.array([0, 3]), 3)


@pytest.mark.parametrize(("n", "bs", "drop"), [(100, 32, False), (100, 32, True), (64, 64, True)])
def test_iter_batches_cover_epoch(n, bs, drop):
    ds = labelled(n)
    rng = np.random.default_rng(0)
    batches = list(iter_batches(ds.x, ds.y, bs, shuffle=True, rng=rng, drop_last=drop))
    assert len(batches) == n_batches(n, bs, drop)
    xs = np.concatenate([b[0] for b in batches])
    ys = np.concatenate([b[1] for b in batches])
    assert all(len(b[0]) == bs for b in batches[:-1])
    assert len(xs) == (n - n % bs if drop else n)
    np.testing.assert_array_equal(xs[:, 0] // 3 % 4, ys)  # pairs stay together
    if not drop:
        assert sorted((xs[:, 0] // 3).tolist()) == list(range(n))
    second = next(iter_batches(ds.x, ds.y, bs, rng=rng))[1]
    assert not np.array_equal(second, batches[0][1])  # the generator moved on


def test_iter_batches_unshuffled_and_seeded():
    ds = labelled(10)
    (_, yb), *_ = iter_batches(ds.x, ds.y, 4, shuffle=False)
    np.testing.assert_array_equal(yb, [0, 1, 2, 3])
    a = [b[1] for b in iter_batches(ds.x, ds.y, 3, rng=5)]
    b = [b[1] for b in iter_batches(ds.x, ds.y, 3, rng=5)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_bptt_windows_line_up():
    ids = np.arange(103)
    data = batchify(ids, 4)
    assert data.shape == (4, 25) and data[1, 0] == 25
    wins = list(bptt_windows(ids, batch=4, seq_len=7))
    assert len(wins) == n_bptt_windows(103, 4, 7) == 4
    assert [w[0].shape for w in wins] == [(4, 7), (4, 7), (4, 7), (4, 3)]
    for x, y in wins:
        np.testing.assert_array_equal(y, x + 1)  # target = input shifted by one
    # Each stream continues across windows, so the carried hidden state sees the next tokens.
    np.testing.assert_array_equal(np.concatenate([w[0] for w in wins], axis=1), data[:, :-1])
    short = list(bptt_windows(ids, 4, 7, drop_last=True))
    assert len(short) == 3 == n_bptt_windows(103, 4, 7, drop_last=True)
    with pytest.raises(BpcliError, match="too few"):
        batchify(np.arange(5), 4)


def test_bptt_on_text_dataset():
    ds = text_dataset("hello world, " * 40)
    for x, y in bptt_windows(stream_of(ds), batch=3, seq_len=16):
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
