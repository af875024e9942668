import gzip
import struct

import numpy as np
import pytest

from bpcli.data import load_csv, load_idx, load_npy_folder, load_npz, load_text, read_idx
from bpcli.errors import BpcliError

IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
             np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}  # fmt: skip


def idx_bytes(arr):
    """The IDX encoding of ``arr``, written independently of the loader."""
    head = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, gz=False):
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def raises_naming(path, match):
    """BpcliError whose where is the file and whose one-line message matches."""

    class Ctx:
        def __enter__(self):
            self.cm = pytest.raises(BpcliError, match=match)
            self.info = self.cm.__enter__()

        def __exit__(self, *exc):
            out = self.cm.__exit__(*exc)
            err = self.info.value
            assert err.where == str(path) and "\n" not in str(err), str(err)
            return out

    return Ctx()


# ---- IDX ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    labels = np.array([0, 3, 1, 2, 3, 0], dtype=np.uint8)
    ip = write_idx(tmp_path / "img-idx3-ubyte", images, gz)
    lp = write_idx(tmp_path / "lab-idx1-ubyte", labels, gz)
    ds = load_idx(ip, lp)
    assert ds.x.shape == (6, 1, 5, 4) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[:, 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(ds.y, labels) and ds.y.dtype == np.int64
    raw = load_idx(ip, lp, scale=False, channel=False)
    np.testing.assert_array_equal(raw.x, images)


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_idx_types_big_endian(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx", arr)), arr)


def test_idx_bad_inputs(tmp_path):
    img = write_idx(tmp_path / "img", np.zeros((3, 2, 2), np.uint8))
    lab = write_idx(tmp_path / "lab", np.zeros(3, np.uint8))
    missing = tmp_path / "nope-idx3-ubyte.gz"
    with raises_naming(missing, "no such file"):
        load_idx(missing, lab)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with raises_naming(bad, "magic number 0x08030000"):
        read_idx(bad)
    data = idx_bytes(np.zeros((3, 2, 2), np.uint8))
    for cut in (data[:2], data[:10], data[:-1]):
        short = tmp_path / "short"
        short.write_bytes(cut)
        with raises_naming(short, "truncated"):
            read_idx(short)
    gz = tmp_path / "short.gz"
    gz.write_bytes(gzip.compress(data)[:-9])
    with raises_naming(gz, "truncated gzip"):
        read_idx(gz)
    extra = tmp_path / "extra"
    extra.write_bytes(data + b"\x00")
    with raises_naming(extra, "1 unexpected bytes"):
        read_idx(extra)
    lab4 = write_idx(tmp_path / "lab4", np.zeros(4, np.uint8))
    with raises_naming(lab4, "4 labels for 3 images"):
        load_idx(img, lab4)
    with raises_naming(img, "must be 1-D"):
        load_idx(lab, img)
    big = write_idx(tmp_path / "big", np.array([0, 1, 9], np.uint8))
    with raises_naming(big, "label 9 of sample 2 is out of range 0..4"):
        load_idx(img, big, n_classes=5)
    empty = write_idx(tmp_path / "empty", np.zeros((0, 2, 2), np.uint8))
    with raises_naming(empty, "empty"):
        load_idx(empty, write_idx(tmp_path / "l0", np.zeros(0, np.uint8)))


# ---- NPZ ----------------------------------------------------------------------------------


def test_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((5, 3)), y=np.array([0, 1, 2, 1, 0]))
    ds = load_npz(p)
    assert ds.task == "classification" and ds.n_classes == 3 and ds.name == "d"
    q = tmp_path / "r.npz"
    np.savez(q, feats=np.ones((4, 2)), target=np.array([0.5, 1, 2, 3]))
    reg = load_npz(q, x="feats", y="target")
    assert reg.task == "regression" and reg.y.shape == (4, 1) and reg.y.dtype == np.float32


def test_npz_bad_inputs(tmp_path):
    with raises_naming(tmp_path / "none.npz", "no such file"):
        load_npz(tmp_path / "none.npz")
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((5, 3)), labels=np.zeros(5, np.int64))
    with raises_naming(p, "no array named 'y'; it holds x, labels"):
        load_npz(p)
    np.savez(p, x=np.ones((5, 3)), y=np.zeros(4, np.int64))
    with raises_naming(p, "'x' has 5 samples but 'y' has 4"):
        load_npz(p)
    np.savez(p, x=np.ones((0, 3)), y=np.zeros(0, np.int64))
    with raises_naming(p, "empty"):
        load_npz(p)
    np.savez(p, x=np.ones((2, 3)), y=np.array([0, -1]))
    with raises_naming(p, "label -1 of sample 1 is out of range"):
        load_npz(p)
    np.savez(p, x=np.ones((2, 3)), y=np.array([0, 5]))
    with raises_naming(p, "label 5 of sample 1 is out of range 0..2"):
        load_npz(p, n_classes=3)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with raises_naming(junk, "not a readable"):
        load_npz(junk)


# ---- CSV ----------------------------------------------------------------------------------


def test_csv_header_and_label_by_name(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,label,b\n1,0,2\n\n3,1,4.5\n5,2,6\n")
    ds = load_csv(p, label="label")
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4.5], [5, 6]])
    np.testing.assert_array_equal(ds.y, [0, 1, 2])
    assert ds.meta["columns"] == ["a", "label", "b"] and ds.x.dtype == np.float32


def test_csv_no_header_label_index_and_regression(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("0.5;1;2\n1.5;3;4\n")
    ds = load_csv(p, label=0, delimiter=";")
    assert ds.task == "regression" and ds.y[:, 0].tolist() == [0.5, 1.5]
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4]])
    assert load_csv(p, label=-1, delimiter=";").task == "classification"


def test_csv_bad_inputs(tmp_path):
    p = tmp_path / "t.csv"
    with raises_naming(p, "no such file"):
        load_csv(p)
    p.write_text("a,b,c\n1,2,0\n3,4\n")
    with raises_naming(p, "line 3 has 2 fields, expected 3"):
        load_csv(p)
    p.write_text("a,b,c\n1,2,0\n3,x4,1\n")
    with raises_naming(p, r"line 3, column 2 \(b\): 'x4' is not a number"):
        load_csv(p)
    p.write_text("1,2,0\n3,,1\n")
    with raises_naming(p, "line 2, column 2: '' is not a number"):
        load_csv(p)
    p.write_text("a,b,c\n")
    with raises_naming(p, "empty"):
        load_csv(p)
    p.write_text("a,b,c\n1,2,0\n")
    with raises_naming(p, "no column named 'y'; columns are a, b, c"):
        load_csv(p, label="y")
    p.write_text("1,2,0\n1,2,-1\n")
    with raises_naming(p, "line 2: label -1 is out of range"):
        load_csv(p)
    p.write_text("1,2,0\n1,2,1\n1,2,4\n")
    with raises_naming(p, "line 3: label 4 is out of range 0..2"):
        load_csv(p, n_classes=3)
    p.write_text("1,2,0.5\n")
    with raises_naming(p, "not an integer class"):
        load_csv(p, task="classification")


# ---- folders of .npy ----------------------------------------------------------------------


def test_npy_class_folders(tmp_path):
    for cls, n in (("cat", 2), ("dog", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            np.save(tmp_path / cls / f"{i}.npy", np.full((2, 2), i, np.float32))
    ds = load_npy_folder(tmp_path)
    assert ds.x.shape == (5, 2, 2) and ds.classes == ("cat", "dog")
    assert ds.y.tolist() == [0, 0, 1, 1, 1]


def test_npy_labels_file(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"s{i}.npy", np.arange(4) + i)
    (tmp_path / "labels.csv").write_text("file,label\ns0.npy,b\ns1.npy,a\ns2.npy,b\n")
    ds = load_npy_folder(tmp_path)
    assert ds.classes == ("a", "b") and ds.y.tolist() == [1, 0, 1]
    (tmp_path / "labels.csv").write_text("s0.npy,0.5\ns1.npy,1\ns2.npy,2\n")
    assert load_npy_folder(tmp_path).task == "regression"


def test_npy_folder_bad_inputs(tmp_path):
    with raises_naming(tmp_path / "x", "no such folder"):
        load_npy_folder(tmp_path / "x")
    (tmp_path / "a").mkdir()
    with raises_naming(tmp_path / "a", "no .npy files"):
        load_npy_folder(tmp_path)
    np.save(tmp_path / "a" / "0.npy", np.zeros(3))
    np.save(tmp_path / "a" / "1.npy", np.zeros(4))
    with raises_naming(tmp_path / "a" / "1.npy", r"shape \(4,\) differs from \(3,\)"):
        load_npy_folder(tmp_path)
    (tmp_path / "a" / "1.npy").write_bytes(b"garbage")
    with raises_naming(tmp_path / "a" / "1.npy", "not a readable .npy"):
        load_npy_folder(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    np.save(flat / "s0.npy", np.zeros(3))
    lab = flat / "labels.csv"
    lab.write_text("s0.npy,0\ns9.npy,1\n")
    with raises_naming(lab, "lists s9.npy"):
        load_npy_folder(flat)
    np.save(flat / "s9.npy", np.zeros(3))
    np.save(flat / "s5.npy", np.zeros(3))
    with raises_naming(lab, "s5.npy has no line"):
        load_npy_folder(flat)


def test_text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcab")
    ds = load_text(p)
    assert ds.n_classes == 3 and ds.x.tolist() == [0, 1, 2, 0] and ds.y.tolist() == [1, 2, 0, 1]
    p.write_bytes(b"ab\xff")
    with raises_naming(p, "not utf-8"):
        load_text(p)
    with raises_naming(tmp_path / "no.txt", "no such file"):
        load_text(tmp_path / "no.txt")
