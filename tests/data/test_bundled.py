import hashlib

import numpy as np

from bpcli.data import bundled, load_austen, load_digits, stream_of, vocab_of
from bpcli.plugins.registry import Registry

DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def sha256_of(name):
    return hashlib.sha256(bundled.data_file(name).read_bytes()).hexdigest()


def test_digits_file_is_the_documented_one():
    assert sha256_of("digits.npz") == bundled.DIGITS_SHA256


def test_digits_shapes_labels_and_counts():
    ds = load_digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32
    assert ds.y.shape == (1797,) and ds.y.dtype == np.int64
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.n_classes == 10 and ds.class_counts().tolist() == DIGIT_COUNTS
    raw = load_digits(scale=False, flatten=True)
    assert raw.x.shape == (1797, 64) and raw.x.dtype == np.uint8 and raw.x.max() == 16
    np.testing.assert_array_equal(raw.x.reshape(-1, 1, 8, 8) / np.float32(16), ds.x)


def test_austen_text_and_encoding():
    assert sha256_of("pride_and_prejudice.txt") == bundled.AUSTEN_SHA256
    text = bundled.austen_text()
    assert 100_000 <= len(text.encode()) <= 1_000_000
    assert text.startswith("PRIDE AND PREJUDICE")
    ds = load_austen()
    assert ds.task == "language" and ds.n_classes == 75 == len(set(text))
    assert vocab_of(ds).decode(stream_of(ds)) == text
    np.testing.assert_array_equal(ds.x[1:], ds.y[:-1])


def test_builtin_plugin_registers_every_dataset():
    from bpcli.builtins import datasets

    reg = Registry("dataset")
    datasets.bpcli_register_datasets(lambda name, obj: reg.add("builtins", name, obj))
    names = {"digits", "austen", "digits1d", "spirals", "xor", "moons", "circles", "sine"}
    assert names <= set(reg.names())
    assert all(n == n.lower() and " " not in n for n in reg.names())
    assert len(reg.get("spirals")(n_samples=30, seed=1)) == 30
