"""Checkpoints: round trip without pickle, atomic writes, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from bpcli.app.store.checkpoint import (
    check_same_spec,
    link_checkpoint,
    load_checkpoint,
    require,
    save_checkpoint,
    spec_hash,
)
from bpcli.errors import BpcliError


def payload(scale: float = 1.0, n: int = 4) -> dict:
    rng = np.random.default_rng(0)
    gen = np.random.default_rng(7)
    gen.random(3)
    return {
        "model": {"fc.weight": rng.standard_normal((n, 3)).astype(np.float32) * scale,
                  "fc.bias": np.zeros(n, np.float32)},
        "optim": {"state": {"0": {"step": 3, "exp_avg": np.ones((n, 3), np.float32)}},
                  "param_groups": [{"lr": 0.1, "betas": [0.9, 0.999], "params": [0, 1]}]},
        "epoch": 2,
        "rng": gen.bit_generator.state,
        "history": [{"epoch": 1, "val_loss": 0.5}],
    }  # fmt: skip


def test_round_trip(tmp_path):
    p = save_checkpoint(tmp_path / "last.npz", payload())
    got = load_checkpoint(p)
    want = payload()
    np.testing.assert_array_equal(got["model"]["fc.weight"], want["model"]["fc.weight"])
    assert got["model"]["fc.weight"].dtype == np.float32
    assert got["optim"]["state"]["0"]["step"] == 3
    np.testing.assert_array_equal(got["optim"]["state"]["0"]["exp_avg"], 1)
    assert got["epoch"] == 2 and got["history"] == want["history"]
    g = np.random.default_rng()
    g.bit_generator.state = got["rng"]
    ref = np.random.default_rng(7)
    ref.random(3)
    assert g.random() == ref.random()
    # no pickle anywhere: the file loads with allow_pickle=False and has prefixed keys
    with np.load(p, allow_pickle=False) as z:
        assert "model/fc.weight" in z.files and "optim/state.0.exp_avg" in z.files
    assert [f.name for f in tmp_path.iterdir()] == ["last.npz"]


def test_link_keeps_the_linked_version(tmp_path):
    last, best = tmp_path / "last.npz", tmp_path / "best.npz"
    save_checkpoint(last, payload(1.0))
    link_checkpoint(last, best)
    save_checkpoint(last, payload(2.0))
    w1 = payload(1.0)["model"]["fc.weight"]
    np.testing.assert_array_equal(load_checkpoint(best)["model"]["fc.weight"], w1)
    np.testing.assert_array_equal(load_checkpoint(last)["model"]["fc.weight"], 2 * w1)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["best.npz", "last.npz"]


def test_missing_and_corrupted(tmp_path):
    with pytest.raises(BpcliError, match="no such checkpoint") as e:
        load_checkpoint(tmp_path / "nope.npz")
    assert "nope.npz" in str(e.value)
    p = save_checkpoint(tmp_path / "c.npz", payload())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BpcliError, match="corrupted or truncated") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(BpcliError, match=r"c\.npz"):
        load_checkpoint(p)
    # flip bytes in the middle of an array: the zip CRC catches it
    bad = bytearray(data)
    i = data.index(b"fc.weight") + 200
    bad[i : i + 8] = b"\xff" * 8
    p.write_bytes(bytes(bad))
    with pytest.raises(BpcliError, match=r"c\.npz"):
        load_checkpoint(p)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(BpcliError, match="not a bpcli checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(BpcliError, match="missing step"):
        require({"epoch": 1}, ("step",), p)


def test_spec_mismatch_names_fields(tmp_path):
    spec = {"name": "m", "seed": 0, "train": {"epochs": 4, "batch_size": 32}}
    ck = {"spec": spec, "spec_hash": spec_hash(spec)}
    check_same_spec(ck, {**spec, "train": {"epochs": 9, "batch_size": 32}}, "x.npz")  # epochs ok
    other = {**spec, "seed": 1, "train": {"epochs": 4, "batch_size": 64}}
    with pytest.raises(BpcliError, match=r"another spec: seed .*train.batch_size") as e:
        check_same_spec(ck, other, tmp_path / "x.npz")
    assert "x.npz" in str(e.value)


def test_exception_mid_write_keeps_previous(tmp_path, monkeypatch):
    p = save_checkpoint(tmp_path / "last.npz", payload(1.0))
    before = p.read_bytes()

    def boom(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(p, payload(2.0))
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["last.npz"]
    np.testing.assert_array_equal(
        load_checkpoint(p)["model"]["fc.weight"], payload(1.0)["model"]["fc.weight"]
    )


def test_unwritable_dir(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "missing-dir" / "last.npz"  # root ignores permissions
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "last.npz"
    with pytest.raises(BpcliError, match="cannot write the checkpoint") as e:
        save_checkpoint(target, payload())
    assert "last.npz" in str(e.value)


def test_sigkill_during_large_save_keeps_previous(tmp_path):
    """A writer killed with SIGKILL at a random moment leaves a loadable checkpoint."""
    target = tmp_path / "last.npz"
    script = textwrap.dedent(f"""
        import numpy as np, sys
        from bpcli.app.store.checkpoint import save_checkpoint
        big = np.zeros((4_000_000,), np.float32)
        i = 0
        while True:
            big[:] = i
            save_checkpoint({str(target)!r}, {{"model": {{"w": big}}, "epoch": i}})
            if i == 0:
                print("saved", flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"saved"
        time.sleep(0.4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ck = load_checkpoint(target)
    w = ck["model"]["w"]
    assert w.shape == (4_000_000,) and w[0] == w[-1] == ck["epoch"]


def test_zero_d_arrays_keep_their_shape(tmp_path):
    # BatchNorm's num_batches_tracked is 0-d; resume loads it back with a strict shape check.
    p = save_checkpoint(tmp_path / "last.npz", {"model": {"bn.num_batches_tracked": np.array(7)}})
    got = load_checkpoint(p)["model"]["bn.num_batches_tracked"]
    assert got.shape == () and got == 7
