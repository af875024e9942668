"""build(): every shipped spec builds; sizes are inferred; sizes that do not fit are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpcli.app.model.build import build
from bpcli.app.spec.schema import load_spec
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.optim.lr_scheduler import CosineAnnealingLR, WarmupLR

MODELS = Path(__file__).resolve().parents[2] / "models"
SPECS = sorted(p.stem for p in MODELS.glob("*.toml"))
# (parameter count, output shape of one sample) per shipped spec
EXPECT = {
    "mlp-digits": (64 * 256 + 256 + 256 * 10 + 10, (10,)),
    "cnn-digits": (320 + 64 + 18496 + 128 + 32896 + 1290, (10,)),
    "spirals": (2 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3, (3,)),
    "deep-sigmoid": (64 * 64 * 9 + 64 * 9 + 64 * 10 + 10, (10,)),
    "deep-relu-he": (64 * 64 * 9 + 64 * 9 + 64 * 10 + 10, (10,)),
    "char-lstm": (75 * 32 + 4 * 256 * (32 + 256 + 2) + 256 * 75 + 75, (64, 75)),
    "tiny-transformer": (113867, (64, 75)),
    "cnn1d-digits1d": (32 * 6 + 64 * 32 * 5 + 64 + 64 * 64 * 3 + 64 + 640 * 10 + 10, (10,)),
    "mlp-digits1d": (40 * 256 + 256 + 256 * 256 + 256 + 2570, (10,)),
}


def test_every_spec_is_listed():
    assert set(SPECS) == set(EXPECT)


@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_builds(name):
    b = build(load_spec(MODELS / f"{name}.toml"))
    params, out_shape = EXPECT[name]
    assert b.model.num_parameters() == params
    assert b.steps_per_epoch > 0 and b.splits.train is not None
    x = np.zeros((2, *b.input_shape), np.int64 if b.task == "language" else np.float32)
    b.model.eval()
    out = b.model(Tensor(x))
    if b.task == "language":
        assert b.stateful == (name == "char-lstm")
        out = out[0]
    assert tuple(out.shape[1:]) == out_shape


def test_inferred_sizes_and_structure():
    b = build(load_spec(MODELS / "cnn-digits.toml"))
    conv0, bn, conv1, lin = b.model[0], b.model[1], b.model[4], b.model[9]
    assert conv0.in_channels == 1 and bn.num_features == 32 and conv1.in_channels == 32
    assert lin.in_features == 64 * 2 * 2
    assert isinstance(b.scheduler, CosineAnnealingLR) and b.scheduler.T_max == 30
    assert b.standardizer is not None and b.n_classes == 10 and b.task == "classification"
    assert len(b.splits.test) == 359  # round(0.2 * 1797)


def test_deterministic_and_init():
    s = load_spec(MODELS / "deep-relu-he.toml")
    a, b = build(s), build(s)
    for (n, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters(),
                              strict=True):  # fmt: skip
        np.testing.assert_array_equal(p.data, q.data)
        if n.endswith("bias"):
            assert not p.data.any()  # bias_init = "zeros"
    w = a.model[0].weight.data
    assert abs(w.std() - np.sqrt(2 / 64)) < 0.02  # He normal over 64 inputs


def test_warmup_and_step_schedule():
    b = build(load_spec(MODELS / "tiny-transformer.toml"))
    assert isinstance(b.scheduler, WarmupLR) and b.schedule_interval == "step"


def write(tmp_path, layers, extra=""):
    p = tmp_path / "bad.toml"
    p.write_text(f'[data]\ndataset = "digits"\n[model]\nlayers = [{layers}]\n{extra}')
    return load_spec(p)


def test_size_mismatch_names_both_layers(tmp_path):
    s = write(tmp_path, '{type = "conv2d", out_channels = 8, kernel_size = 3}, {type = "flatten"}'
                        ', {type = "linear", in_features = 100, out_features = 10}')  # fmt: skip
    with pytest.raises(BpcliError) as e:
        build(s)
    msg = str(e.value)
    assert "bad.toml: model.layers[2]" in e.value.where and "\n" not in msg
    assert "layer 2 (linear)" in msg and "layer 1 (flatten) gives (N, 288)" in msg


def test_first_layer_mismatch_names_the_data(tmp_path):
    s = write(tmp_path, '{type = "linear", out_features = 10}')
    with pytest.raises(BpcliError) as e:
        build(s)  # a linear layer over (N, 1, 8, 8) gives (N, 1, 8, 10): not 10 classes
    assert e.value.where.endswith("bad.toml: loss") and "(N, 1, 8, 10)" in e.value.msg
    s = write(tmp_path, '{type = "conv1d", out_channels = 4, kernel_size = 3}')
    with pytest.raises(BpcliError, match=r"layer 0 \(conv1d\).*the data gives \(N, 1, 8, 8\)"):
        build(s)


def test_residual_mismatch(tmp_path):
    s = write(tmp_path, '{type = "flatten"}, {type = "residual", body = [{type = "linear", '
                        'out_features = 32}]}, {type = "linear", out_features = 10}')  # fmt: skip
    with pytest.raises(BpcliError, match=r"layer 1 \(residual\): the body gives \(N, 32\)"):
        build(s)


def test_residual_builds(tmp_path):
    s = write(tmp_path, '{type = "flatten"}, {type = "residual", body = [{type = "linear", '
                        'out_features = 64}, {type = "relu"}]}, {type = "linear", '
                        'out_features = 10}')  # fmt: skip
    b = build(s)
    assert "1.body.0.weight" in dict(b.model.named_parameters())


def test_bad_constructor_value_names_layer(tmp_path):
    s = write(tmp_path, '{type = "flatten"}, {type = "dropout", p = 2.0}, '
                        '{type = "linear", out_features = 10}')  # fmt: skip
    with pytest.raises(BpcliError) as e:
        build(s)
    assert "model.layers[1]" in e.value.where and "layer 1 (dropout)" in e.value.msg


def test_language_layer_needs_language_data(tmp_path):
    s = write(tmp_path, '{type = "char_rnn"}')
    with pytest.raises(BpcliError, match="language"):
        build(s)
