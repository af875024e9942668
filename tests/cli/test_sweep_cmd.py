"""``bpcli sweep`` and ``bpcli lr-find``."""

import json

from click.testing import CliRunner

from bpcli.cli import cli


def test_sweep_prints_heatmap_best_and_stable_region(tmp_path):
    out = tmp_path / "sw"
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            "models/spirals.toml",
            "--lr",
            "1e-2,10",
            "--init",
            "he",
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "✗" in result.output  # lr 10 diverged
    assert "best: init he, lr 0.01" in result.output
    assert "stable region, he: lr 0.01 .. 0.01" in result.output
    assert (out / "runs.csv").exists() and (out / "sweep.json").exists()


def test_sweep_json_and_bad_lr(tmp_path):
    result = CliRunner().invoke(cli, ["sweep", "models/spirals.toml", "--lr", "3e-2", "--init",
                                      "xavier", "--epochs", "1", "--out", str(tmp_path / "s"),
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["best"]["init"] == "xavier" and len(d["runs"]) == 1
    bad = CliRunner().invoke(cli, ["sweep", "models/spirals.toml", "--lr", "1:0.1:3"])
    assert bad.exit_code == 2 and "--lr" in bad.output


def test_lr_find_prints_a_curve_and_a_suggestion():
    result = CliRunner().invoke(cli, ["lr-find", "models/spirals.toml", "--steps", "60"])
    assert result.exit_code == 0, result.output
    assert "suggested lr:" in result.output and "|" in result.output
