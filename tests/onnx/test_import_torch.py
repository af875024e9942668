"""Import models exported by torch.onnx and compare forward outputs and the gradients of a
cross-entropy loss (w.r.t. the input and every initializer) with PyTorch's own."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from bpcli import functional as F  # noqa: E402
from bpcli.engine.tensor import Tensor  # noqa: E402
from bpcli.onnx.importer.load import load  # noqa: E402

pytestmark = pytest.mark.torch
RTOL, ATOL = 2e-4, 2e-5


def export(model: nn.Module, x: torch.Tensor, opset: int = 17):
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, export_params=True,
                          do_constant_folding=False, opset_version=opset,
                          input_names=["x"], output_names=["y"])  # fmt: skip
    return load(_proto(buf.getvalue()))


def _proto(data: bytes):
    import onnx

    return onnx.load_from_string(data)


def compare(model: nn.Module, x: np.ndarray, n_classes: int, target_shape=None):
    torch.manual_seed(0)
    mod = export(model, torch.from_numpy(x))
    mod.eval()
    rng = np.random.default_rng(0)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = model(xt)
    t = rng.integers(0, n_classes, size=out_t.shape[0])
    torch.nn.functional.cross_entropy(out_t, torch.from_numpy(t)).backward()

    xb = Tensor(x.copy(), requires_grad=True)
    out_b = mod(xb)
    np.testing.assert_allclose(out_b.data, out_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    F.cross_entropy(out_b, t).backward()
    np.testing.assert_allclose(xb.grad, xt.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg="dx")
    ours = dict(mod.named_parameters())
    theirs = {n: p for n, p in model.named_parameters()}
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for name, p in theirs.items():
        g = ours[name].grad
        assert g is not None, name
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)
    return mod


def test_mlp():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    mod = compare(m, x, 4)
    assert mod.summary().n_params == sum(p.numel() for p in m.parameters())


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))


def test_cnn_batchnorm_dropout():
    torch.manual_seed(0)
    m = _CNN()
    with torch.no_grad():  # non-trivial running statistics
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(2).standard_normal((3, 3, 8, 8)).astype(np.float32)
    mod = compare(m, x, 5)
    assert "bn.running_mean" in dict(mod.named_buffers())


def test_cnn_train_mode_batch_stats():
    torch.manual_seed(0)
    m = _CNN()
    m.drop.p = 0.0
    x = np.random.default_rng(3).standard_normal((4, 3, 8, 8)).astype(np.float32)
    mod = export(m, torch.from_numpy(x))
    m.train()
    mod.train()
    y_t = m(torch.from_numpy(x))
    y_b = mod(x)
    np.testing.assert_allclose(y_b.data, y_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    # running mean as torch; running var differs by design (ONNX: biased variance)
    rm = dict(mod.named_buffers())["bn.running_mean"].data
    np.testing.assert_allclose(rm, m.bn.running_mean.numpy(), rtol=1e-5, atol=1e-6)


class _LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 6, num_layers=1, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[-1])


def test_lstm():
    torch.manual_seed(0)
    x = np.random.default_rng(4).standard_normal((7, 4, 5)).astype(np.float32)
    compare(_LSTM(), x, 3)


class _GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        y, _ = self.gru(x)
        return self.fc(y[-1])


def test_gru():
    torch.manual_seed(0)
    x = np.random.default_rng(5).standard_normal((6, 4, 5)).astype(np.float32)
    compare(_GRU(), x, 3)


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.layer(x).mean(1))


def test_transformer_encoder_layer():
    torch.manual_seed(0)
    x = np.random.default_rng(6).standard_normal((3, 5, 16)).astype(np.float32)
    compare(_Encoder(), x, 4)


class _Block(nn.Module):
    """ResNet basic block + a classifier head."""

    def __init__(self, c=4):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 3)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)) + x)
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))


def test_resnet_basic_block():
    torch.manual_seed(0)
    m = _Block()
    with torch.no_grad():
        for bn in (m.bn1, m.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    x = np.random.default_rng(7).standard_normal((2, 4, 6, 6)).astype(np.float32)
    compare(m, x, 3)
