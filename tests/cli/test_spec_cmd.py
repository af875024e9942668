"""``bpcli init-spec`` and ``bpcli spec --resolved``."""

import tomllib
from pathlib import Path

from tests.cli_helpers import MLP, one_line_error, run


def test_init_spec_writes_a_commented_spec_that_resolves(tmp_path):
    from bpcli.app.spec.schema import load_spec

    path = tmp_path / "model.toml"
    result = run("init-spec", path)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.count("\n#") > 10  # commented for a user to edit
    spec = load_spec(path)
    assert spec.data["dataset"] == "digits" and spec.train["epochs"] >= 1


def test_init_spec_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text("# mine\n")
    one_line_error(run("init-spec", path), "model.toml", "--force")
    assert path.read_text() == "# mine\n"
    assert run("init-spec", path, "--force").exit_code == 0
    assert path.read_text() != "# mine\n"


def test_starter_spec_trains(tmp_path):
    path = tmp_path / "model.toml"
    run("init-spec", path)
    result = run("train", path, "--epochs", "1", "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output


def test_resolved_spec_is_complete_and_reads_back_the_same(tmp_path):
    from bpcli.app.spec.schema import load_spec

    result = run("spec", "--resolved", MLP, "--set", "optimizer.lr=0.05")
    assert result.exit_code == 0, result.output
    raw = tomllib.loads(result.stdout)
    assert raw["optimizer"]["lr"] == 0.05 and "betas" in raw["optimizer"]
    assert raw["train"]["batch_size"] == 32
    out = tmp_path / "resolved.toml"
    out.write_text(result.stdout)
    assert load_spec(out) == load_spec(MLP, overrides=["optimizer.lr=0.05"])


def test_spec_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[data\n')
    one_line_error(run("spec", "--resolved", bad), "bad.toml:2:")
    bad.write_text(Path(MLP).read_text().replace("[loss]", "[loss]\nlabel_smooth = 0.1"))
    one_line_error(run("spec", "--resolved", bad), "loss.label_smooth", "label_smoothing")
    one_line_error(run("spec", "--resolved", tmp_path / "none.toml"), "none.toml")


def test_every_command_has_examples_in_its_help():
    for cmd in ("train", "eval", "predict", "info", "init-spec", "spec"):
        result = run(cmd, "--help")
        assert result.exit_code == 0 and "Example" in result.output, cmd
    top = run("--help").output
    for cmd in ("train", "eval", "predict", "info", "init-spec", "spec"):
        assert f"bpcli {cmd}" in top, cmd
