"""``bpcli eval``, ``bpcli predict`` and ``bpcli info`` on a checkpoint trained once here."""

import json

import numpy as np
import pytest

from tests.cli_helpers import MLP, one_line_error, run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    result = run("train", MLP, "--epochs", "2", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_eval_json_has_metrics_and_a_confusion_matrix(run_dir):
    result = run("eval", run_dir / "best.npz", "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert 0.5 < obj["accuracy"] <= 1 and obj["loss"] > 0
    conf = np.array(obj["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == obj["n_samples"]
    assert np.trace(conf) / conf.sum() == pytest.approx(obj["accuracy"])


def test_eval_of_a_run_dir_draws_the_table(run_dir):
    result = run("eval", run_dir)
    assert result.exit_code == 0, result.output
    assert "Confusion matrix" in result.stdout and "accuracy" in result.stdout


def test_eval_on_another_dataset(run_dir):
    result = run("eval", run_dir, "--dataset", "digits", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == 1797


def test_eval_of_a_corrupted_checkpoint_is_one_line(run_dir, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes((run_dir / "best.npz").read_bytes()[:300])
    one_line_error(run("eval", bad), "bad.npz", "corrupted")
    one_line_error(run("eval", tmp_path / "missing.npz"), "missing.npz")


def test_predict_writes_classes_and_probabilities(run_dir, tmp_path):
    from bpcli.data import load_digits

    ds = load_digits()
    inp = tmp_path / "x.npz"
    np.savez(inp, x=ds.x[:20])
    out = tmp_path / "p.npz"
    result = run("predict", run_dir, inp, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == 20
    with np.load(out) as z:
        assert z["classes"].shape == (20,) and z["probabilities"].shape == (20, 10)
        assert (z["classes"] == ds.y[:20]).mean() > 0.5
    result = run("predict", run_dir, inp)
    assert result.exit_code == 0 and (tmp_path / "x.pred.npz").is_file()


def test_predict_with_inputs_of_the_wrong_shape(run_dir, tmp_path):
    inp = tmp_path / "x.npz"
    np.savez(inp, x=np.zeros((3, 5), np.float32))
    one_line_error(run("predict", run_dir, inp), "x.npz", "shape")


@pytest.mark.parametrize("target", ["spec", "checkpoint"])
def test_info_shows_layers_params_and_flops(run_dir, target):
    path = MLP if target == "spec" else run_dir
    result = run("info", path, "--json")
    assert result.exit_code == 0, result.output
    *rows, total = map(json.loads, result.stdout.splitlines())
    assert total["params"] == 64 * 256 + 256 + 256 * 10 + 10
    assert any(r.get("type", "").lower() == "linear" for r in rows)
    table = run("info", path)
    assert table.exit_code == 0 and "FLOPs" in table.stdout
