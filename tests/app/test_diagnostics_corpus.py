"""The corpus of bench/diagnostics as tests: the fast subset's verdicts in `make test`, the
whole corpus under `slow`; --try-fix on three broken corpus runs; the run-level verdict and
the readable layer names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpcli.app.diagnostics import verdict
from bpcli.app.diagnostics.names import label_of, labels
from bpcli.app.experiments import diag_corpus as corpus
from bpcli.app.experiments.try_fix import chosen_fix, try_fix

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "diagnostics" / "corpus.toml"
CASES = corpus.load_corpus(CORPUS)
BY_NAME = {c.name: c for c in CASES}


def test_the_corpus_has_25_healthy_and_25_broken_runs_of_every_kind():
    healthy = [c for c in CASES if c.healthy]
    broken = [c for c in CASES if not c.healthy]
    assert len(healthy) >= 25 and len(broken) >= 25
    kinds = {k for c in broken for k in c.expect}
    assert {"vanishing", "exploding", "dead_units", "saturation", "batchnorm", "update_ratio",
            "inputs"} <= kinds  # fmt: skip
    assert all(c.base.is_file() for c in CASES)


def _check(case, tmp_path):
    o = corpus.run_case(case, tmp_path)
    if case.healthy:
        assert o.raised == [], f"{case.name} is healthy but raised {o.raised}"
    else:
        assert set(case.expect) <= set(o.raised), f"{case.name}: {o.raised}, want {case.expect}"
    return o


@pytest.mark.parametrize("name", [c.name for c in CASES if c.fast])
def test_fast_corpus_run(name, tmp_path):
    _check(BY_NAME[name], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in CASES if not c.fast])
def test_corpus_run(name, tmp_path):
    _check(BY_NAME[name], tmp_path)


@pytest.mark.parametrize("name", ["negative-bias", "sgd-lr-tiny", "raw-inputs-mlp"])
def test_try_fix_improves_a_broken_corpus_run(name, tmp_path):
    case = BY_NAME[name]
    o = corpus.run_case(case, tmp_path)
    entry = chosen_fix(o.flags)
    assert entry is not None and entry["kind"] in case.expect
    spec = corpus.case_spec(case, tmp_path / "data")
    r = try_fix(spec, o.flags, tmp_path / "fix", epochs=3)
    assert r.sets == entry["set"] and r.epochs == 3
    assert r.improved, r.to_dict()


def _epochs(losses):
    return [{"kind": "epoch", "epoch": i + 1, "train_loss": x} for i, x in enumerate(losses)]


def _entry(kind, epochs, severity="warn"):
    return {
        "kind": kind,
        "severity": severity,
        "steps": [10 * e for e in epochs],
        "epochs": epochs,
        "layers": [],
        "evidence": "",
        "suggestion": "",
        "set": [],
    }


def test_a_single_spike_while_the_loss_improves_is_a_note():
    chance = verdict.chance_loss(10)
    out = verdict.judge([_entry("exploding", [3])], _epochs([1.0, 0.5, 0.4, 0.3]), chance)
    assert out[0]["severity"] == "info" and "single spike" in out[0]["why"]
    # the loss rose with it: a flag
    out = verdict.judge([_entry("exploding", [3])], _epochs([1.0, 0.5, 0.7, 0.3]), chance)
    assert out[0]["severity"] == "warn"
    # it persists: a flag
    out = verdict.judge([_entry("exploding", [2, 3])], _epochs([1.0, 0.5, 0.4, 0.3]), chance)
    assert out[0]["severity"] == "warn"


def test_update_ratio_is_a_flag_only_when_training_stalls_or_diverges():
    chance = verdict.chance_loss(10)
    improving = verdict.judge([_entry("update_ratio", [1])], _epochs([1.2, 0.3, 0.1]), chance)
    stalled = verdict.judge([_entry("update_ratio", [1])], _epochs([2.3, 2.3, 2.3]), chance)
    assert improving[0]["severity"] == "info" and stalled[0]["severity"] == "warn"


def test_a_loss_blow_up_between_check_points_is_exploding():
    chance = verdict.chance_loss(10)
    out = verdict.judge([], _epochs([1e6, 2.3, 2.3]), chance, lr=20.0)
    assert [e["kind"] for e in out] == ["exploding"] and out[0]["set"] == ["optimizer.lr=2"]
    assert verdict.judge([], _epochs([3.0, 1.0]), chance) == []


def test_readable_layer_names():
    from bpcli.nn import BatchNorm1d, Conv2d, Linear, ReLU, Sequential

    m = Sequential(Conv2d(1, 6, 5), ReLU(), Linear(128, 64), BatchNorm1d(64))
    names = labels(m)
    assert names == {"0": "0 conv2d (1→6, 5x5)", "1": "1 relu", "2": "2 linear (128→64)",
                     "3": "3 batch_norm1d (64)"}  # fmt: skip
    assert label_of("2.weight", names) == "2 linear (128→64) weight"
    assert label_of("9", names) == "9"


# -- charts -----------------------------------------------------------------------------------
def _png_ok(path: Path) -> None:
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(path).convert("L"))
    assert img.shape[0] > 400 and img.shape[1] > 600
    assert (img < 250).mean() > 0.01  # lines and text drawn, not a blank page


@pytest.mark.parametrize("name", ["mlp-adam", "lstm", "onnx-mlp"])
def test_charts_of_a_classifier_a_language_model_and_an_onnx_run(name, tmp_path):
    from bpcli.app.diagnostics.report import load_run
    from bpcli.cli import render_charts

    o = corpus.run_case(BY_NAME[name], tmp_path)
    run = load_run(o.run_dir)
    for ext in ("png", "svg", "html"):
        render_charts.save(render_charts.run_figure(run), str(tmp_path / f"c.{ext}"))
    _png_ok(tmp_path / "c.png")
    for ext in ("svg", "html"):
        text = (tmp_path / f"c.{ext}").read_text()
        assert "<svg" in text and "<script" not in text and "@import" not in text
        assert "<text" not in text  # glyphs drawn as paths: no font to fetch or to lack
        assert 'href="http' not in text and "url(http" not in text
    fig = render_charts.compare_figure([("a", run.epochs), ("b", run.epochs)], "val_loss")
    render_charts.save(fig, str(tmp_path / "cmp.png"))
    _png_ok(tmp_path / "cmp.png")


# -- the CLI ----------------------------------------------------------------------------------
def test_diagnose_try_fix_and_plot_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from bpcli.cli import cli

    o = corpus.run_case(BY_NAME["tanh-large-init"], tmp_path)
    run = CliRunner()
    r = run.invoke(cli, ["diagnose", str(o.run_dir), "--try-fix", "--epochs", "2"])
    assert r.exit_code == 0, r.output
    assert "fix for saturation: --set 'model.init={type = \"xavier_normal\"}'" in r.output
    assert "the fix helps" in r.output
    r = run.invoke(cli, ["diagnose", str(o.run_dir), "--epochs", "2"])
    assert r.exit_code == 2 and "bpcli: --epochs:" in r.output
    r = run.invoke(cli, ["diagnose", str(o.run_dir), "--png", str(tmp_path / "h.txt")])
    assert r.exit_code == 2 and "the file needs the extension" in r.output
    out = tmp_path / "cmp.png"
    r = run.invoke(cli, ["plot", str(o.run_dir), str(o.run_dir), "-o", str(out)])
    assert r.exit_code == 0 and out.stat().st_size > 10_000, r.output
    r = run.invoke(cli, ["plot", str(o.run_dir), "--metric", "val_f1", "-o", str(out)])
    assert r.exit_code == 2 and "no 'val_f1' in this run" in r.output
