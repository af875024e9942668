"""``bpcli gradcheck`` and ``bpcli plugins check``."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bpcli.cli import cli
from bpcli.plugins import manager


def test_gradcheck_spec_prints_a_per_layer_table():
    result = CliRunner().invoke(cli, ["gradcheck", "models/mlp-digits.toml"])
    assert result.exit_code == 0, result.output
    assert "Linear" in result.output and "all passed" in result.output


def test_gradcheck_json_and_layers_glob():
    result = CliRunner().invoke(cli, ["gradcheck", "models/spirals.toml", "--layers", "0.*",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["passed"] and [t["name"] for t in d["tensors"]] == ["0.weight", "0.bias", "input"]


def test_gradcheck_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from bpcli.nn.layers.linear import Linear
    from bpcli.onnx import export

    export(Linear(4, 3), np.ones((2, 4), np.float32), tmp_path / "m.onnx")
    result = CliRunner().invoke(cli, ["gradcheck", str(tmp_path / "m.onnx"), "--per-tensor"])
    assert result.exit_code == 0, result.output
    assert "weight" in result.output and "all passed" in result.output


def test_gradcheck_nothing_to_check_is_a_user_error():
    result = CliRunner().invoke(cli, ["gradcheck", "models/spirals.toml", "--batch", "0"])
    assert result.exit_code == 2 and "--batch" in result.output


def test_plugins_check_on_the_installed_extras(monkeypatch):
    pytest.importorskip("bpcli_extras")
    monkeypatch.delenv("BPCLI_PLUGINS")
    manager.reset()
    try:
        result = CliRunner().invoke(cli, ["plugins", "check", "--json"])
    finally:
        monkeypatch.setenv("BPCLI_PLUGINS", "none")
        manager.reset()
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert {"mish", "swish", "focal", "lion", "polynomial", "checkerboard"} <= set(rows)
    assert all(r["status"] == "pass" for r in rows.values()), rows
    assert rows["mish"]["onnx"].startswith("ok")


def test_plain_plugins_still_lists():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0 and "bpcli.builtins.layers" in result.output
