"""``bpcli train --diagnose`` output and ``bpcli diagnose RUN_DIR``."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bpcli.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SIGMOID = str(ROOT / "models" / "deep-sigmoid.toml")
RELU_HE = str(ROOT / "models" / "deep-relu-he.toml")


def run(*args, columns=100):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def sigmoid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diag") / "run"
    result = run("train", SIGMOID, "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_train_shows_a_compact_line_per_epoch_then_the_table(sigmoid_run):
    _, text = sigmoid_run
    assert text.count("grad health: vanishing in 0, 2, 4, 6") == 2
    assert "Gradient health at step 80 (epoch 2)" in text
    for col in ("|grad|", "max|g|", "zeros", "|w|", "upd/w"):
        assert col in text
    assert "trend" not in text  # 100 columns: the numbers and flags get the room
    assert "⚠ vanishing in 0, 2, 4" in text and "fix: use ReLU with He" in text


def test_a_wide_terminal_also_gets_the_trend_column(tmp_path):
    result = run("train", SIGMOID, "--epochs", "1", "--out", tmp_path / "r", columns=140)
    assert result.exit_code == 0, result.output
    assert "trend" in result.stdout and "vanishing" in result.stdout


def test_healthy_net_says_ok(tmp_path):
    result = run("train", RELU_HE, "--epochs", "1", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "grad health: ok" in result.stdout and "⚠" not in result.stdout


def test_json_carries_the_check_points_on_the_epoch_lines(tmp_path):
    result = run("train", RELU_HE, "--epochs", "1", "--diagnose=10", "--json", "--out",
                 tmp_path / "r")  # fmt: skip
    assert result.exit_code == 0, result.output
    epoch, final = map(json.loads, result.stdout.splitlines())
    assert [d["step"] for d in epoch["diagnostics"]] == [1, 10, 20, 30, 40]
    assert "diagnostics" not in final
    p = epoch["diagnostics"][0]["params"][0]
    assert {"grad_norm", "grad_mean", "grad_std", "grad_max", "zero_frac", "weight_norm",
            "update_ratio"} <= set(p)  # fmt: skip


def test_no_diagnose_and_bad_value(tmp_path):
    result = run("train", RELU_HE, "--epochs", "1", "--no-diagnose", "--json", "--out",
                 tmp_path / "r")  # fmt: skip
    assert result.exit_code == 0 and "diagnostics" not in result.stdout
    lines = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert '"kind": "diag"' not in lines
    bad = run("train", RELU_HE, "--diagnose=0", "--out", tmp_path / "r2")
    assert bad.exit_code == 2 and "--diagnose" in bad.stderr and "Traceback" not in bad.output
    missing = run("diagnose", tmp_path / "r")
    assert missing.exit_code == 2 and "--diagnose" in missing.stderr


def test_diagnose_shows_the_run_and_saves_svg_and_html(sigmoid_run, tmp_path):
    out, _ = sigmoid_run
    svg, html = tmp_path / "d.svg", tmp_path / "d.html"
    result = run("diagnose", out, "--svg", svg, "--html", html)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "3 check points, steps 1..80" in text and "0 linear (64→64)" in text
    assert "vanishing" in text and "3/3 check points" in text
    # charts, not pictures of the terminal: SVG glyphs as paths, the HTML page holds the SVG
    assert "<svg" in svg.read_text() and "<text" not in svg.read_text()
    assert "<html" in html.read_text().lower() and "<svg" in html.read_text()


def test_diagnose_json(sigmoid_run):
    out, _ = sigmoid_run
    result = run("diagnose", out, "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["steps"] == [1, 40, 80] and len(obj["grad_norm"]["0.weight"]) == 3
    (flag,) = obj["flags"]
    assert flag["kind"] == "vanishing" and flag["steps"] == [1, 40, 80]
