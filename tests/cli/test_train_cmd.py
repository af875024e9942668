"""``bpcli train``: exit codes, output modes, the run directory, and every bad input as one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import MLP, ROOT, one_line_error, run

FAST = ["--epochs", "2"]
FINAL_KEYS = {"test_loss", "test_accuracy", "best_epoch", "run_dir", "seconds", "stopped_reason"}


def spec_file(tmp_path, text, name="bad.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def mlp_with(**replace):
    """The mlp-digits spec text with lines replaced (a key's whole line)."""
    text = Path(MLP).read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_help_has_every_option_and_examples():
    out = run("train", "--help").output
    for opt in ("--epochs", "--lr", "--batch-size", "--seed", "--set", "--out", "--resume",
                "--overwrite", "--device", "--json", "--quiet", "Examples:"):  # fmt: skip
        assert opt in out, opt


def test_json_is_one_object_per_epoch_then_the_final_one(tmp_path):
    out = tmp_path / "run"
    result = run("train", MLP, *FAST, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *epochs, final = lines
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert FINAL_KEYS <= set(final)
    assert final["run_dir"] == str(out) and final["stopped_reason"] == "completed"
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # the loss falls
    assert final["test_accuracy"] > 0.5
    for name in ("spec.toml", "metrics.jsonl", "manifest.json", "last.npz", "best.npz"):
        assert (out / name).is_file(), name
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics if m.get("kind") == "epoch"] == [1, 2]


def test_quiet_prints_one_line(tmp_path):
    result = run("train", MLP, "--epochs", "1", "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "test accuracy" in lines[0] and "run dir" in lines[0]


def test_options_override_the_spec(tmp_path):
    out = tmp_path / "run"
    args = ("--epochs", "1", "--lr", "0.01", "--batch-size", "64", "--seed", "3")
    result = run("train", MLP, *args, "--set", "train.log_every=7", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    spec = (out / "spec.toml").read_text()
    for line in ("lr = 0.01", "batch_size = 64", "seed = 3", "epochs = 1", "log_every = 7"):
        assert line in spec, line


def test_existing_run_dir_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "run"
    assert run("train", MLP, "--epochs", "1", "--out", out, "--quiet").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    one_line_error(run("train", MLP, "--epochs", "1", "--out", out), str(out), "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = run("train", MLP, "--epochs", "1", "--out", out, "--overwrite", "--quiet")
    assert result.exit_code == 0, result.output


def test_resume_continues_a_run(tmp_path):
    out = tmp_path / "run"
    assert run("train", MLP, "--epochs", "1", "--out", out, "--quiet").exit_code == 0
    result = run("train", MLP, "--epochs", "2", "--resume", out, "--json")
    assert result.exit_code == 0, result.output
    *epochs, final = map(json.loads, result.stdout.splitlines())
    assert [e["epoch"] for e in epochs] == [2] and final["epochs_run"] == 2


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--device", "cuda"], ["--device", "cpu", "cuda"]),
        (["--epochs", "0"], ["--epochs", "0"]),
        (["--lr", "0"], ["--lr"]),
        (["--lr", "-0.1"], ["--lr"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--set", "train.epocs=3"], ["--set", "epocs", "epochs"]),
        (["--json", "--quiet"], ["--quiet"]),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, needles):
    out = tmp_path / "run"
    one_line_error(run("train", MLP, *args, "--out", out), *needles)
    assert not out.exists()


BAD_SPECS = {
    # name: (spec text, strings the one-line error must hold)
    "toml_syntax": (
        mlp_with(**{"seed = 0": "seed = = 0"}),
        [f"bad.toml:{Path(MLP).read_text().splitlines().index('seed = 0') + 1}:", "TOML"],
    ),
    "unknown_field": (mlp_with(**{"batch_size = 32": "batch_sise = 32"}),
                      ["train.batch_sise", "batch_size"]),
    "unknown_layer": (mlp_with(**{'{type = "relu"}': '{type = "rleu"}'}), ["rleu", "relu"]),
    "bad_sizes": (mlp_with(**{"out_features = 10}": "in_features = 100, out_features = 10}"}),
                  ["layer 3", "100", "256"]),
    "zero_epochs": (mlp_with(**{"epochs = 40": "epochs = 0"}), ["train.epochs", "0"]),
    "zero_lr": (mlp_with(**{"lr = 2e-3": "lr = 0.0"}), ["optimizer.lr"]),
    "unknown_dataset": (mlp_with(**{'dataset = "digits"': 'dataset = "digitz"'}), ["digitz"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_specs_are_one_line_before_anything_is_written(tmp_path, case):
    text, needles = BAD_SPECS[case]
    path = spec_file(tmp_path, text)
    out = tmp_path / "run"
    line = one_line_error(run("train", path, "--out", out), *needles)
    assert "bad.toml" in line
    assert not out.exists()


def test_missing_spec_file(tmp_path):
    one_line_error(run("train", tmp_path / "nope.toml"), "nope.toml")


def test_corrupted_checkpoint_refuses_to_resume(tmp_path):
    out = tmp_path / "run"
    assert run("train", MLP, "--epochs", "1", "--out", out, "--quiet").exit_code == 0
    last = out / "last.npz"
    last.write_bytes(last.read_bytes()[:200])
    one_line_error(run("train", MLP, "--epochs", "2", "--resume", out), "last.npz")


def test_resume_from_another_spec_is_refused(tmp_path):
    out = tmp_path / "run"
    assert run("train", MLP, "--epochs", "1", "--out", out, "--quiet").exit_code == 0
    one_line_error(run("train", MLP, "--lr", "0.1", "--resume", out), "another spec", "lr")


def test_non_finite_loss_stops_with_exit_1_and_one_line(tmp_path):
    out = tmp_path / "run"
    result = run("train", MLP, "--epochs", "1", "--lr", "1e30", "--out", out, "--quiet")
    line = one_line_error(result, "non-finite", "0.weight", code=1)
    assert "clip_grad_norm" in line
    assert len(result.stdout.strip().splitlines()) == 1


def test_interrupted_run_exits_130(monkeypatch, tmp_path):
    from bpcli.app.training import loop as app_train

    def fake_train(spec, out_dir=None, reporter=None, **kw):
        result = app_train.TrainResult(Path(out_dir), 1, 1, {}, stopped_reason="interrupted")
        reporter.on_message(f"interrupted; resume with: bpcli train X --resume {out_dir}")
        reporter.on_end(result)
        return result

    monkeypatch.setattr(app_train, "train", fake_train)
    result = run("train", MLP, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 130
    assert "--resume" in result.stderr and "Traceback" not in result.output


def test_a_real_process_trains_and_reports(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bpcli", "train", MLP, "--epochs", "2", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout
    assert "Training summary" in proc.stdout and "best epoch" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("test accuracy")
    assert "Traceback" not in proc.stderr
    assert (out / "best.npz").is_file() and (out / "manifest.json").is_file()


def test_interrupted_batchnorm_run_resumes(tmp_path):
    # cnn-digits has BatchNorm buffers (a 0-d num_batches_tracked) that must survive resume.
    out = tmp_path / "cnn"
    first = run(
        "train", str(ROOT / "models" / "cnn-digits.toml"), "--epochs", "1", "--out", out, "--quiet"
    )
    assert first.exit_code == 0, first.output
    again = run(
        "train",
        str(ROOT / "models" / "cnn-digits.toml"),
        "--epochs",
        "2",
        "--resume",
        out,
        "--quiet",
    )
    assert again.exit_code == 0, again.output


def test_threads_option(tmp_path):
    bad = run("train", MLP, "--threads", "0", "--out", tmp_path / "t0")
    assert bad.exit_code == 2 and not (tmp_path / "t0").exists()
    ok = run("train", MLP, "--threads", "1", "--epochs", "1", "--quiet", "--out", tmp_path / "t1")
    assert ok.exit_code == 0, ok.output
