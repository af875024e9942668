"""The training loop: exact resume, determinism, guards, run directories."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from bpcli.app.spec.schema import resolve
from bpcli.app.store import runs
from bpcli.app.store.checkpoint import load_checkpoint
from bpcli.app.training.loop import TIMING, Reporter, train
from bpcli.errors import BpcliError


def mlp_spec(epochs=4, lr=2e-3, **train_opts):
    raw = {
        "name": "tiny-mlp",
        "seed": 3,
        "data": {"dataset": "digits", "options": {"flatten": True}, "val": 0.15, "test": 0.15,
                 "standardize": True, "limit": 500},
        "model": {"layers": [{"type": "linear", "out_features": 32}, {"type": "relu"},
                             {"type": "dropout", "p": 0.2},
                             {"type": "linear", "out_features": 10}]},
        "optimizer": {"type": "adam", "lr": lr},
        "schedule": {"type": "cosine", "interval": "step"},
        "train": {"epochs": epochs, "batch_size": 32, "log_every": 7, **train_opts},
    }  # fmt: skip
    return resolve(raw)


def metric_lines(run_dir):
    recs = runs.read_metrics(run_dir / runs.METRICS_FILE)
    return [{k: v for k, v in r.items() if k not in TIMING} for r in recs]


def params(run_dir):
    return load_checkpoint(run_dir / runs.LAST)["model"]


def assert_same_params(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_run_dir_files_and_result(tmp_path):
    r = train(mlp_spec(epochs=3), out_dir=tmp_path / "run", argv=["bpcli", "train", "x"])
    d = tmp_path / "run"
    assert r.run_dir == d and r.stopped_reason == "completed" and r.ok
    assert r.epochs_run == 3 and len(r.history) == 3 and r.best_epoch in (1, 2, 3)
    for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
              "test_accuracy"):  # fmt: skip
        assert np.isfinite(r.metrics[k]), k
    assert set(r.checkpoints) == {"last", "best"}
    man = json.loads((d / runs.MANIFEST_FILE).read_text())
    assert man["seed"] == 3 and man["argv"] == ["bpcli", "train", "x"]
    assert set(man["versions"]) >= {"bpcli", "numpy", "numba", "python"}
    assert len(man["data"]["sha256"]) == 64
    assert (d / runs.SPEC_FILE).read_text().startswith('name = "tiny-mlp"')
    lines = metric_lines(d)
    assert [r["epoch"] for r in lines if r["kind"] == "epoch"] == [1, 2, 3]
    assert any(r["kind"] == "step" and r["step"] == 7 for r in lines)
    best = load_checkpoint(d / runs.BEST)
    assert best["epoch"] == best["best"]["epoch"] == r.best_epoch


def test_resume_is_bit_exact(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    train(mlp_spec(), out_dir=straight)
    r2 = train(mlp_spec(), out_dir=split, epochs=2)
    assert r2.epochs_run == 2
    r4 = train(mlp_spec(), resume=split, epochs=4)
    assert r4.epochs_run == 4 and len(r4.history) == 4
    assert_same_params(params(straight), params(split))
    assert metric_lines(straight) == metric_lines(split)


def test_same_seed_same_metrics(tmp_path):
    a = train(mlp_spec(epochs=2), out_dir=tmp_path / "a")
    b = train(mlp_spec(epochs=2), out_dir=tmp_path / "b")
    assert metric_lines(tmp_path / "a") == metric_lines(tmp_path / "b")
    assert a.metrics == b.metrics


class CtrlC(Reporter):
    def __init__(self, at_step):
        self.at, self.step, self.messages = at_step, 0, []

    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s):
        self.step += 1
        if self.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)

    def on_message(self, text):
        self.messages.append(text)


def test_ctrl_c_saves_and_resumes_exactly_mid_epoch(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    train(mlp_spec(epochs=3), out_dir=straight)
    rep = CtrlC(at_step=17)  # in the second epoch (11 batches per epoch)
    r = train(mlp_spec(epochs=3), out_dir=split, reporter=rep)
    assert r.stopped_reason == "interrupted" and r.step == 17
    assert f"--resume {split}" in r.message and rep.messages == [r.message]
    assert load_checkpoint(split / runs.LAST)["position"]["batch"] == 6
    train(mlp_spec(epochs=3), resume=split)
    assert_same_params(params(straight), params(split))
    assert metric_lines(straight) == metric_lines(split)


class Poison(Reporter):
    """Puts a NaN into the last layer's weights during epoch 2."""

    def __init__(self, model_ref):
        self.model_ref = model_ref

    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s):
        if epoch == 2 and batch == 3:
            w = self.model_ref[0]
            w.data[0, 0] = np.nan


def test_nonfinite_stops_and_keeps_last_good(tmp_path, monkeypatch):
    from bpcli.app.training import loop as train_mod

    ref = []
    real_build = __import__("bpcli.app.model.build", fromlist=["build"]).build

    def spy(spec, data=True):
        built = real_build(spec, data)
        ref.append(list(built.model.parameters())[2])  # the second Linear's weight
        return built

    monkeypatch.setattr("bpcli.app.model.build.build", spy)
    r = train_mod.train(mlp_spec(), out_dir=tmp_path / "r", reporter=Poison(ref))
    assert r.stopped_reason == "non-finite" and not r.ok
    assert "step 15 (epoch 2, batch 4)" in r.message
    assert "first non-finite: the gradient of 0.weight" in r.message
    last = load_checkpoint(tmp_path / "r" / runs.LAST)
    assert last["epoch"] == 1 and all(np.isfinite(v).all() for v in last["model"].values())


def test_existing_dir_refused_then_overwrite(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "keep.txt").write_text("mine")
    (d / runs.METRICS_FILE).write_text("old\n")
    with pytest.raises(BpcliError, match=r"--resume.*--overwrite") as e:
        train(mlp_spec(epochs=1), out_dir=d)
    assert str(d) in str(e.value)
    assert (d / runs.METRICS_FILE).read_text() == "old\n"
    train(mlp_spec(epochs=1), out_dir=d, overwrite=True)
    assert (d / "keep.txt").read_text() == "mine"
    assert [r["kind"] for r in metric_lines(d)] == ["step", "epoch"]


def test_resume_errors(tmp_path):
    d = tmp_path / "run"
    train(mlp_spec(epochs=1), out_dir=d)
    with pytest.raises(BpcliError, match=r"another spec: optimizer\.lr") as e:
        train(mlp_spec(epochs=2, lr=0.1), resume=d)
    assert "last.npz" in str(e.value)
    with pytest.raises(BpcliError, match="already has 1 epochs"):
        train(mlp_spec(epochs=1), resume=d)
    with pytest.raises(BpcliError, match="no such run directory"):
        train(mlp_spec(epochs=2), resume=tmp_path / "nope")
    (d / runs.LAST).write_bytes((d / runs.LAST).read_bytes()[:1000])
    with pytest.raises(BpcliError, match="corrupted or truncated"):
        train(mlp_spec(epochs=2), resume=d)


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BpcliError, match="cannot write") as e:
        train(mlp_spec(epochs=1), out_dir=blocker / "run")
    assert str(blocker) in str(e.value)


def test_early_stopping_and_train_loss_monitor(tmp_path):
    spec = resolve({**mlp_spec().to_dict(), "data": {**mlp_spec().data, "val": 0},
                    "train": {**mlp_spec().train, "epochs": 30, "early_stopping":
                              {"metric": "train_accuracy", "patience": 1}}})  # fmt: skip
    r = train(spec, out_dir=tmp_path / "r")
    assert r.monitor == "train_accuracy" and "val_loss" not in r.metrics
    assert r.stopped_reason == "early_stopping" and r.epochs_run < 30
    assert r.epochs_run - r.best_epoch == 1


def test_char_rnn_truncated_bptt(tmp_path):
    raw = {
        "name": "tiny-lm", "seed": 0,
        "data": {"dataset": "austen", "val": 0.1, "limit": 3000},
        "model": {"layers": [{"type": "char_rnn", "embed_dim": 8, "hidden_size": 16}]},
        "optimizer": {"type": "adam", "lr": 1e-2},
        "train": {"epochs": 2, "batch_size": 4, "bptt": 16},
    }  # fmt: skip
    r = train(resolve(raw), out_dir=tmp_path / "lm")
    h = r.history
    assert h[1]["train_loss"] < h[0]["train_loss"]
    assert h[1]["val_perplexity"] == pytest.approx(np.exp(h[1]["val_loss"]))
    assert r.metrics["val_perplexity"] < r.history[0]["train_perplexity"] * 1.5


def test_unknown_monitor_is_refused_before_training(tmp_path):
    spec = mlp_spec(early_stopping={"metric": "val_perplexity", "patience": 2})
    with pytest.raises(BpcliError, match=r"val_perplexity.*train_loss") as e:
        train(spec, out_dir=tmp_path / "r")
    assert e.value.where == "train.early_stopping.metric"
    assert not (tmp_path / "r").exists()


class HardStop(Reporter):
    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s):
        if epoch == 2 and batch == 2:
            raise KeyboardInterrupt  # as a second Ctrl-C would, outside the guarded step


def test_forced_interrupt_keeps_last_complete_checkpoint(tmp_path):
    r = train(mlp_spec(), out_dir=tmp_path / "r", reporter=HardStop())
    assert r.stopped_reason == "interrupted" and "nothing saved" in r.message
    assert load_checkpoint(tmp_path / "r" / runs.LAST)["epoch"] == 1
    r2 = train(mlp_spec(), resume=tmp_path / "r")
    assert r2.epochs_run == 4 and r2.stopped_reason == "completed"
