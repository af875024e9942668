"""Focal loss against a direct numpy formula (no torchvision), and its gradients."""

import bpcli as bp
import numpy as np
import pytest
from bpcli import functional as F
from bpcli.engine.gradcheck import gradcheck
from bpcli.errors import BpcliError

from bpcli_extras.losses import FocalLoss, focal_loss, sigmoid_focal_loss


def ref_sigmoid_focal(x, y, alpha, gamma):
    p = 1 / (1 + np.exp(-x))
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return loss


def ref_focal(x, t, alpha, gamma):
    """x (N, C, ...), t (N, ...): -a_t (1 - p_t)^gamma log p_t."""
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    logpt = np.take_along_axis(logp, np.expand_dims(t, 1), axis=1).squeeze(1)
    loss = -((1 - np.exp(logpt)) ** gamma) * logpt
    if alpha is None:
        return loss
    return loss * (alpha if np.isscalar(alpha) else np.asarray(alpha)[t])


def reduce(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("alpha", [0.25, None, 0.9])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_focal_matches_formula(alpha, gamma, reduction):
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal((6, 3))
    y = (rng.random((6, 3)) < 0.4).astype(np.float64)
    got = sigmoid_focal_loss(bp.tensor(x), y, alpha, gamma, reduction)
    want = reduce(ref_sigmoid_focal(x, y, alpha, gamma), reduction)
    np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [None, 0.5, (0.2, 0.3, 0.5, 1.0)])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.7])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_matches_formula(alpha, gamma, reduction):
    rng = np.random.default_rng(1)
    x, t = 2 * rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    got = focal_loss(bp.tensor(x), t, gamma, alpha, reduction)
    np.testing.assert_allclose(got.data, reduce(ref_focal(x, t, alpha, gamma), reduction),
                               rtol=1e-12, atol=1e-14)  # fmt: skip


def test_focal_spatial_targets_and_float32():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((2, 3, 4, 5)).astype(np.float32), rng.integers(0, 3, (2, 4, 5))
    xt = bp.tensor(x, requires_grad=True)
    got = focal_loss(xt, t, reduction="none")
    got.sum().backward()
    assert got.shape == (2, 4, 5) and got.dtype == np.float32 and xt.grad.dtype == np.float32
    np.testing.assert_allclose(got.data, ref_focal(x.astype(np.float64), t, None, 2.0), rtol=1e-5)


def test_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    got = focal_loss(bp.tensor(x), t, gamma=0.0)
    np.testing.assert_allclose(got.data, F.cross_entropy(bp.tensor(x), bp.tensor(t)).data)
    y = (rng.random((5, 3)) < 0.5).astype(np.float64)
    got = sigmoid_focal_loss(bp.tensor(x), y, alpha=None, gamma=0.0, reduction="mean")
    want = F.binary_cross_entropy_with_logits(bp.tensor(x), bp.tensor(y))
    np.testing.assert_allclose(got.data, want.data, rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 1.5])
def test_focal_gradients(gamma):
    rng = np.random.default_rng(4)
    t = rng.integers(0, 4, 6)
    x = bp.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    assert gradcheck(lambda a: focal_loss(a, t, gamma, (1, 2, 3, 4), "none"), [x]).passed
    y = (rng.random((3, 4)) < 0.5).astype(np.float64)
    x = bp.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda a: sigmoid_focal_loss(a, y, 0.25, gamma, "sum"), [x]).passed


def test_focal_saturated_logits_stay_finite():
    x = bp.tensor(np.array([[40.0, -40.0], [-40.0, 40.0]], np.float32), requires_grad=True)
    for gamma in (0.0, 2.0):
        x.grad = None
        focal_loss(x, np.array([0, 1]), gamma).backward()
        assert np.all(np.isfinite(x.grad))


def test_module_dispatches_on_the_target():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2))
    t, y = rng.integers(0, 2, 4), (rng.random((4, 2)) < 0.5).astype(np.float64)
    loss = FocalLoss(gamma=1.0, alpha=0.25, reduction="sum")
    np.testing.assert_allclose(loss(bp.tensor(x), t).data, ref_focal(x, t, 0.25, 1.0).sum())
    np.testing.assert_allclose(loss(bp.tensor(x), y).data,
                               ref_sigmoid_focal(x, y, 0.25, 1.0).sum())  # fmt: skip


@pytest.mark.parametrize("call,match", [
    (lambda: focal_loss(np.zeros((3, 2)), np.array([0, 1, 2])), "out of range 0..1"),
    (lambda: focal_loss(np.zeros((3, 2)), np.array([0, 1])), r"shape \(3,\)"),
    (lambda: focal_loss(np.zeros((3, 2)), np.zeros(3)), "int class indices"),
    (lambda: focal_loss(np.zeros((3, 2)), np.zeros(3, int), alpha=(1, 2, 3)), "one weight per"),
    (lambda: focal_loss(np.zeros((3, 2)), np.zeros(3, int), reduction="avg"), "reduction"),
    (lambda: FocalLoss(gamma=-1), "gamma"),
    (lambda: sigmoid_focal_loss(np.zeros(3), np.zeros(2)), "target shape"),
    (lambda: sigmoid_focal_loss(np.zeros(3), np.zeros(3), alpha=2.0), "alpha"),
])  # fmt: skip
def test_bad_arguments_are_named(call, match):
    with pytest.raises(BpcliError, match=match):
        call()
