"""bp.save / bp.load: safetensors files that torch opens, and torch's that bpcli opens."""

import json
import sys

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

pytest.importorskip("safetensors")


def test_state_dict_round_trip_into_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    ours = bp.nn.Sequential(bp.nn.Linear(4, 8), bp.nn.ReLU(), bp.nn.Linear(8, 3))
    path = tmp_path / "w.safetensors"
    bp.save(ours.state_dict(), path)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    theirs.load_state_dict(load_file(str(path)))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours.state_dict()[k])  # bit for bit
    np.testing.assert_allclose(ours(bp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_torch_file_loads_into_a_bpcli_model(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    theirs.eval()
    with torch.no_grad():
        theirs[1].running_mean.uniform_()
    path = tmp_path / "t.safetensors"
    save_file(theirs.state_dict(), str(path))
    ours = bp.nn.Sequential(bp.nn.Conv2d(2, 3, 3), bp.nn.BatchNorm2d(3))
    ours.load_state_dict(bp.load(path))
    ours.eval()
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(bp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    loaded = bp.load(path)
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(loaded[k].numpy(), v.numpy())


def test_tensor_nested_dicts_and_plain_values(tmp_path):
    t = bp.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    bp.save(t, tmp_path / "t.st")
    back = bp.load(tmp_path / "t.st")
    assert isinstance(back, bp.Tensor) and back.dtype == np.float64
    np.testing.assert_array_equal(back.numpy(), t.numpy())
    back.data[0, 0] = 7  # loaded memory is writable (optimizers update in place)
    obj = {"model": {"w": t, "b": np.ones(2, np.float32)}, "epoch": 3, "lr": 0.1,
           "name": "run 1", "flags": [True, None], "mask": np.array([True, False])}  # fmt: skip
    bp.save(obj, tmp_path / "d.st", metadata={"note": "hello"})
    back = bp.load(tmp_path / "d.st")
    assert set(back) == {"model.w", "model.b", "epoch", "lr", "name", "flags", "mask"}
    assert (back["epoch"], back["lr"], back["name"], back["flags"]) == (3, 0.1, "run 1",
                                                                         [True, None])  # fmt: skip
    assert back["mask"].dtype == np.bool_
    from safetensors import safe_open

    with safe_open(str(tmp_path / "d.st"), framework="numpy") as f:
        meta = f.metadata()
    assert meta["note"] == "hello" and meta["format"] == "pt" and json.loads(meta["epoch"]) == 3


def test_non_contiguous_arrays_are_saved_by_value(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2].T
    bp.save({"a": a}, tmp_path / "a.st")
    np.testing.assert_array_equal(bp.load(tmp_path / "a.st")["a"].numpy(), a)


def test_mistakes_are_one_line_errors_naming_the_path(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(BpcliError, match=r"bad.safetensors: not a safetensors file"):
        bp.load(bad)
    with pytest.raises(BpcliError, match=r"missing\.st: no such file"):
        bp.load(tmp_path / "missing.st")
    with pytest.raises(BpcliError, match="cannot save a object"):
        bp.save({"x": object()}, tmp_path / "x.st")
    with pytest.raises(BpcliError, match="appears twice"):
        bp.save({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, tmp_path / "x.st")
    with pytest.raises(BpcliError, match="can save a tensor or a dict"):
        bp.save([np.ones(1)], tmp_path / "x.st")
    with pytest.raises(BpcliError, match="cannot write"):
        bp.save({"a": np.ones(1)}, tmp_path / "no" / "dir" / "x.st")
    assert not list(tmp_path.glob("*.tmp*"))


def test_without_the_package_save_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(BpcliError, match=r"pip install 'bpcli\[safetensors\]'"):
        bp.save({"a": np.ones(1)}, tmp_path / "x.st")
