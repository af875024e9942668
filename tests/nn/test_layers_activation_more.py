"""The layers of the newer activations and the modules of the newer losses, against torch.nn
(forward, input and parameter gradients), their registry names and configs."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import nn
from bpcli.errors import BpcliError
from bpcli.nn.layers.activation_more import LAYERS
from bpcli.nn.losses_more import LOSSES

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

X = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32) * 3

PAIRS = [
    (nn.CELU(0.7), torch.nn.CELU(0.7)), (nn.LogSigmoid(), torch.nn.LogSigmoid()),
    (nn.Hardsigmoid(), torch.nn.Hardsigmoid()), (nn.Hardswish(), torch.nn.Hardswish()),
    (nn.Mish(), torch.nn.Mish()), (nn.Softsign(), torch.nn.Softsign()),
    (nn.ReLU6(), torch.nn.ReLU6()), (nn.Softmin(1), torch.nn.Softmin(1)),
    (nn.GLU(), torch.nn.GLU()), (nn.GLU(0), torch.nn.GLU(0)), (nn.PReLU(), torch.nn.PReLU()),
    (nn.PReLU(4, init=0.1), torch.nn.PReLU(4, init=0.1)),
]  # fmt: skip


def _x(mod):
    return X[:2] if isinstance(mod, nn.GLU) and mod.dim == 0 else X[:, :, :4]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[type(p[0]).__name__ for p in PAIRS])
def test_layer_matches_torch(ours, theirs):
    x = _x(ours)
    xb, xt = bp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yb, yt = ours(xb), theirs(xt)
    np.testing.assert_allclose(yb.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    r = np.random.default_rng(1).standard_normal(yb.shape).astype(np.float32)
    (yb * bp.tensor(r)).sum().backward()
    (yt * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(xb.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_prelu_is_trainable_and_round_trips():
    m = nn.PReLU(4, init=0.3)
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    np.testing.assert_array_equal(m.weight.numpy(), np.full(4, 0.3, np.float32))
    again = nn.PReLU.from_config(m.get_config())
    again.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(again(bp.tensor(X[:, :, :4])).numpy(),
                                  m(bp.tensor(X[:, :, :4])).numpy())  # fmt: skip
    with pytest.raises(BpcliError, match="weight must have 1 or 3"):
        m(bp.tensor(X[:, :3]))
    with pytest.raises(BpcliError, match="num_parameters"):
        nn.PReLU(0)


def test_registered_by_name():
    for name, cls in LAYERS.items():
        assert nn.get_layer(name) is cls
    for name, cls in LOSSES.items():
        assert nn.get_loss(name) is cls


def _t(a):
    return torch.tensor(a, requires_grad=a.dtype.kind == "f")


R = np.random.default_rng(2)
A, B = R.standard_normal((4, 6)).astype(np.float32), R.standard_normal((4, 6)).astype(np.float32)
SIGN = R.choice([-1.0, 1.0], 4).astype(np.float32)
P = (1 / (1 + np.exp(-A))).astype(np.float32)
LOSS_PAIRS = [
    (nn.BCELoss(), torch.nn.BCELoss(), (P, (B > 0).astype(np.float32))),
    (nn.BCELoss(reduction="sum"), torch.nn.BCELoss(reduction="sum"), (P, P[::-1].copy())),
    (nn.MarginRankingLoss(0.2), torch.nn.MarginRankingLoss(0.2), (A[:, 0], B[:, 0], SIGN)),
    (nn.CosineEmbeddingLoss(0.1), torch.nn.CosineEmbeddingLoss(0.1), (A, B, SIGN)),
    (nn.HingeEmbeddingLoss(), torch.nn.HingeEmbeddingLoss(), (A, np.sign(B))),
    (nn.SoftMarginLoss(), torch.nn.SoftMarginLoss(), (A, np.sign(B).astype(np.int64))),
    (nn.MultiMarginLoss(p=2), torch.nn.MultiMarginLoss(p=2), (A, np.array([0, 5, 2, 2]))),
    (nn.MultiLabelSoftMarginLoss(), torch.nn.MultiLabelSoftMarginLoss(),
     (A, (B > 0).astype(np.float32))),
    (nn.TripletMarginLoss(swap=True), torch.nn.TripletMarginLoss(swap=True),
     (A, B, A[::-1].copy())),
    (nn.CosineSimilarity(), torch.nn.CosineSimilarity(), (A, B)),
    (nn.PairwiseDistance(p=1.0), torch.nn.PairwiseDistance(p=1.0), (A, B)),
]  # fmt: skip


LOSS_IDS = [f"{type(p[0]).__name__}{i}" for i, p in enumerate(LOSS_PAIRS)]


@pytest.mark.parametrize("ours, theirs, args", LOSS_PAIRS, ids=LOSS_IDS)
def test_loss_module_matches_torch(ours, theirs, args):
    ba = [bp.tensor(a, requires_grad=a.dtype.kind == "f") for a in args]
    ta = [_t(a) for a in args]
    yb, yt = ours(*ba), theirs(*ta)
    np.testing.assert_allclose(yb.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    yb.sum().backward()
    yt.sum().backward()
    for b, t in zip(ba, ta, strict=True):
        if t.grad is not None:
            np.testing.assert_allclose(b.grad, t.grad.numpy(), rtol=1e-5, atol=1e-6)
