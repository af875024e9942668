"""Every nn layer exported at opsets 13, 17 and the newest, run by onnxruntime at a batch size
other than the traced one, equal to bpcli's outputs (float32, rtol 1e-4, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli as bp
import bpcli.onnx as bo
from bpcli import nn
from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort


def _bn_with_stats(bn):
    rng = np.random.default_rng(3)
    bn.running_mean.data[...] = rng.standard_normal(bn.running_mean.shape).astype(np.float32)
    bn.running_var.data[...] = rng.uniform(0.5, 2, bn.running_var.shape).astype(np.float32)
    return bn


def _attn(batch_first):
    def fwd(self, x):
        return self.mha(x, x, x)

    return Fn(fwd, mha=nn.MultiheadAttention(8, 2, batch_first=batch_first))


LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (3, 6)),
    "linear_3d": (lambda: nn.Linear(6, 4), (3, 5, 6)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1, dilation=1, groups=1), (2, 3, 7, 7)),
    "conv2d_groups": (lambda: nn.Conv2d(4, 4, 3, stride=2, groups=2), (2, 4, 7, 7)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                    output_padding=1), (2, 3, 4, 4)),
    "max_pool2d": (lambda: nn.MaxPool2d(2), (2, 3, 6, 6)),
    "max_pool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
    "avg_pool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 7)),
    "avg_pool1d": (lambda: nn.AvgPool1d(2), (2, 3, 8)),
    "adaptive_avg_pool2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    "adaptive_avg_pool2d_even": (lambda: nn.AdaptiveAvgPool2d(2), (2, 3, 6, 6)),
    "global_avg_pool": (lambda: nn.GlobalAvgPool(), (2, 3, 5, 5)),
    "batchnorm1d": (lambda: _bn_with_stats(nn.BatchNorm1d(5)), (4, 5)),
    "batchnorm2d": (lambda: _bn_with_stats(nn.BatchNorm2d(3)), (2, 3, 4, 4)),
    "layernorm": (lambda: nn.LayerNorm(6), (3, 4, 6)),
    "layernorm_2d": (lambda: nn.LayerNorm((4, 6)), (3, 4, 6)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3)),
    "dropout": (lambda: nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5)), (3, 6)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4, 4)),
    "residual": (lambda: nn.Residual(nn.Sequential(nn.Linear(6, 6), nn.Tanh())), (3, 6)),
    "mha": (lambda: _attn(False), (5, 3, 8)),
    "mha_batch_first": (lambda: _attn(True), (3, 5, 8)),
    "transformer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), (3, 5, 8)),
    "transformer_gelu_norm_first": (lambda: nn.TransformerEncoderLayer(
        8, 2, 16, activation="gelu", norm_first=True, batch_first=True), (3, 5, 8)),
}  # fmt: skip

ACTIVATIONS = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU,
    "elu": lambda: nn.ELU(0.7), "selu": nn.SELU, "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "softplus": lambda: nn.Softplus(beta=2.0), "hardtanh": nn.Hardtanh,
    "softmax": nn.Softmax, "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer(name, opset, tmp_path):
    bp.manual_seed(0)
    make, shape = LAYERS[name]
    check_export(make(), randn(*shape), tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name, opset, tmp_path):
    x = randn(4, 7) * 3
    check_export(ACTIVATIONS[name](), x, tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_embedding(opset, tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 2))
    idx = np.random.default_rng(0).integers(0, 10, (5, 3))
    _, proto = check_export(m, idx, tmp_path, opset)
    assert proto.graph.initializer[0].name == "0.weight"


RNNS = {
    "lstm": lambda **kw: nn.LSTM(4, 5, **kw),
    "gru": lambda **kw: nn.GRU(4, 5, **kw),
    "rnn": lambda **kw: nn.RNN(4, 5, **kw),
    "rnn_relu": lambda **kw: nn.RNN(4, 5, nonlinearity="relu", **kw),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("kind", sorted(RNNS))
@pytest.mark.parametrize("variant", ["one", "two_layers_batch_first", "bidirectional"])
def test_recurrent(kind, variant, opset, tmp_path):
    bp.manual_seed(0)
    kw = {"one": {}, "two_layers_batch_first": {"num_layers": 2, "batch_first": True},
          "bidirectional": {"bidirectional": True}}[variant]  # fmt: skip
    m = RNNS[kind](**kw)
    batch_first = kw.get("batch_first", False)
    x = randn(3, 6, 4) if batch_first else randn(6, 3, 4)
    res, _ = check_export(m, x, tmp_path, opset, batch_axis=0 if batch_first else 1)
    op = {"lstm": "LSTM", "gru": "GRU"}.get(kind, "RNN")
    assert res.op_types[op] == m.num_layers * m.num_directions
    assert len(res.output_names) == (3 if kind == "lstm" else 2)


def test_lstm_given_state(tmp_path):
    bp.manual_seed(0)
    lstm = nn.LSTM(4, 5)

    def fwd(self, x, h, c):
        return self.lstm(x, (h, c))[0]

    m = Fn(fwd, lstm=lstm)
    x, h, c = randn(6, 3, 4), randn(1, 3, 5, seed=1), randn(1, 3, 5, seed=2)
    check_export(m, (x, h, c), tmp_path, 17, dynamic_batch=False, grow=False)


def test_lstm_with_projection_is_refused(tmp_path):
    m = nn.Sequential(nn.LSTM(4, 5, proj_size=2))
    with pytest.raises(BpcliError, match=r"lstm_seq \(layer 0\).*proj_size > 0") as e:
        bo.export(m, randn(6, 3, 4), tmp_path / "m.onnx", batch_axis=1)
    assert "\n" not in str(e.value) and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", OPSETS)
def test_mlp(opset, tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 16),
                      nn.GELU(), nn.Linear(16, 3))  # fmt: skip
    res, _ = check_export(m, randn(5, 8), tmp_path, opset)
    assert res.input_names == ["input"] and res.output_names == ["output"]
    assert set(m.state_dict()) <= set(res.initializers)


@pytest.mark.parametrize("opset", OPSETS)
def test_lenet(opset, tmp_path):
    bp.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 32), nn.ReLU(), nn.Linear(32, 10), nn.LogSoftmax(dim=1),
    )  # fmt: skip
    _bn_with_stats(m[1])
    res, proto = check_export(m, randn(2, 1, 28, 28), tmp_path, opset)
    assert {"0.weight", "1.running_mean", "1.running_var", "8.weight"} <= set(res.initializers)
    assert "BatchNormalization" in res.op_types and "Dropout" not in res.op_types
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
