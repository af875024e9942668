"""Spec loading: round trip, defaults, overrides, and one-line errors naming file and field."""

from __future__ import annotations

import pytest

from bpcli.app.spec.schema import load_spec, resolve
from bpcli.errors import BpcliError

BASE = """
[data]
dataset = "digits"
options = {flatten = true}
[model]
layers = [{type = "linear", out_features = 10}]
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def err(tmp_path, text, overrides=()):
    with pytest.raises(BpcliError) as e:
        load_spec(write(tmp_path, text), overrides)
    assert "\n" not in str(e.value)
    return e.value


def test_defaults_filled(tmp_path):
    s = load_spec(write(tmp_path, BASE))
    assert s.name == "s" and s.seed == 0 and s.schedule is None
    assert s.train["epochs"] == 10 and s.train["batch_size"] == 32 and s.train["bptt"] == 64
    assert s.train["clip_grad_norm"] is None and s.train["early_stopping"] is None
    assert s.loss["type"] == "cross_entropy" and s.loss["label_smoothing"] == 0.0
    assert s.optimizer == {**s.optimizer, "type": "adam", "lr": 0.001, "weight_decay": 0.0}
    assert s.model["layers"][0] == {"type": "linear", "out_features": 10, "bias": True}
    assert s.data["val"] == 0.1 and s.data["standardize"] is False


def test_round_trip(tmp_path):
    text = (
        BASE
        + """
[model.init]
type = "he_normal"
[schedule]
type = "cosine"
warmup = 3
[train]
early_stopping = {metric = "val_accuracy", patience = 2}
clip_grad_norm = 1
"""
    )
    s = load_spec(write(tmp_path, text))
    assert s.train["early_stopping"]["mode"] == "max" and s.train["clip_grad_norm"] == 1.0
    again = load_spec(write(tmp_path, s.to_toml("resolved"), "r.toml"))
    assert again == s
    assert resolve(s.to_dict(), "x.toml") == s


def test_round_trip_residual_and_strings(tmp_path):
    layers = (
        '[{type = "residual", body = [{type = "linear", out_features = 64}], shortcut = []}, '
        '{type = "linear", out_features = 10}]'
    )
    text = 'description = "quote \\" tab\\t é"\n' + BASE.replace(
        '[{type = "linear", out_features = 10}]', layers
    )
    s = load_spec(write(tmp_path, text))
    assert s.description == 'quote " tab\t é'
    assert s.model["layers"][0]["body"][0]["out_features"] == 64
    assert load_spec(write(tmp_path, s.to_toml(), "r.toml")) == s


def test_overrides(tmp_path):
    s = load_spec(
        write(tmp_path, BASE),
        [
            "optimizer.lr=0.05",
            "train.epochs=3",
            "model.layers[0].out_features=12",
            "schedule.type=step",
            "schedule.step_size=2",
            "data.dataset=spirals",
            "data.options={}",
        ],
    )
    assert s.optimizer["lr"] == 0.05 and s.train["epochs"] == 3
    assert s.model["layers"][0]["out_features"] == 12
    assert s.schedule["type"] == "step" and s.data["dataset"] == "spirals"


@pytest.mark.parametrize("override, words", [
    ("trian.epochs=3", ["unknown field 'trian'", "did you mean 'train'"]),
    ("train.epocs=3", ["train.epocs", "did you mean 'epochs'"]),
    ("model.layers.5.out_features=3", ["no item 5"]),
    ("data.dataset.x=3", ["is a value"]),
    ("noequals", ["key.path=value"]),
])  # fmt: skip
def test_bad_override(tmp_path, override, words):
    e = err(tmp_path, BASE, [override])
    assert e.where == "--set"
    for w in words:
        assert w in e.msg


def test_toml_syntax_error_has_line_and_column(tmp_path):
    e = err(tmp_path, BASE + "\n[train]\nepochs = = 3\n")
    assert e.where.endswith("s.toml:9:10") and "TOML syntax error" in e.msg


@pytest.mark.parametrize("extra, field, words", [
    ("[train]\nepochs = 0", "train.epochs", [">= 1"]),
    ("[train]\nbatch_size = -4", "train.batch_size", [">= 1"]),
    ("[train]\nepochs = 2.5", "train.epochs", ["integer"]),
    ("[train]\nepocs = 2", "train.epocs", ["unknown field", "did you mean 'epochs'",
                                           "batch_size"]),
    ("[optimizer]\nlr = 0", "optimizer.lr", ["> 0"]),
    ("[optimizer]\nlr = -1e-3", "optimizer.lr", ["> 0"]),
    ("[optimizer]\ntype = \"adamm\"", "optimizer.type", ["unknown optimizer", "'adam'"]),
    ("[optimizer]\nbetas2 = 1", "optimizer.betas2", ["takes no argument", "'betas'"]),
    ("[loss]\ntype = \"cross_entropi\"", "loss.type", ["unknown loss", "cross_entropy"]),
    ("[schedule]\ntype = \"cosine\"\ninterval = \"batch\"", "schedule.interval", ["epoch"]),
    ("[schedule]\ntype = \"step\"", "schedule.step_size", ["needs the argument"]),
    ("[train]\nearly_stopping = {patience = 0}", "train.early_stopping.patience", [">= 1"]),
    ("[train]\nclip_grad_norm = \"big\"", "train.clip_grad_norm", ["number > 0"]),
    ("[data2]\nx = 1", "data2", ["unknown field", "valid"]),
])  # fmt: skip
def test_field_errors(tmp_path, extra, field, words):
    e = err(tmp_path, BASE + "\n" + extra + "\n")
    assert e.where.endswith(f"s.toml: {field}"), e.where
    for w in words:
        assert w in e.msg, e.msg


@pytest.mark.parametrize("layers, field, words", [
    ('{type = "lienar", out_features = 10}', "model.layers[0].type",
     ["unknown layer 'lienar'", "did you mean 'linear'"]),
    ('{type = "linear", out_feature = 10}', "model.layers[0].out_feature",
     ["layer 0 (linear)", "'out_feature'", "did you mean 'out_features'"]),
    ('{type = "relu"}, {type = "linear"}', "model.layers[1].out_features",
     ["layer 1 (linear)", "needs"]),
    ('{type = "residual", body = [{type = "relu", x = 1}]}', "model.layers[0].body[0].x",
     ["layer 0 (relu)"]),
])  # fmt: skip
def test_layer_errors(tmp_path, layers, field, words):
    text = BASE.replace('[{type = "linear", out_features = 10}]', f"[{layers}]")
    e = err(tmp_path, text)
    assert e.where.endswith(f"s.toml: {field}"), e.where
    for w in words:
        assert w in e.msg, e.msg


def test_unknown_dataset_and_option(tmp_path):
    e = err(tmp_path, BASE.replace('"digits"', '"digts"'))
    assert e.where.endswith("data.dataset") and "did you mean 'digits'" in e.msg
    e = err(tmp_path, BASE.replace("flatten = true", "flaten = true"))
    assert e.where.endswith("data.options.flaten") and "'flatten'" in e.msg


def test_missing_file_and_section(tmp_path):
    with pytest.raises(BpcliError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")
    e = err(tmp_path, '[data]\ndataset = "digits"\n')
    assert e.where.endswith("s.toml: model")
