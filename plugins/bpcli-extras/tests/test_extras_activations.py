"""Mish (the extras_mish primitive) and Swish (a composite): finite differences and torch."""

import bpcli as bp
import numpy as np
import pytest
from bpcli.engine.gradcheck import gradcheck
from bpcli.errors import BpcliError

from bpcli_extras.layers import Mish, Swish, swish
from bpcli_extras.ops import Mish as MishOp
from bpcli_extras.ops import mish

SHAPES = [(), (1,), (7,), (3, 4), (2, 0, 3), (2, 3, 5)]


def x64(shape, seed=0, scale=3.0):
    return bp.tensor(scale * np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_mish_is_a_registered_primitive():
    assert bp.OPS["extras_mish"] is MishOp
    assert MishOp.onnx == "Mish" and "dx =" in MishOp.__doc__
    y = mish(bp.tensor([1.0, -2.0], requires_grad=True))
    assert isinstance(y._op, MishOp)


@pytest.mark.parametrize("shape", SHAPES)
def test_mish_finite_differences(shape):
    r = gradcheck(mish, [x64(shape)], atol=1e-8, rtol=1e-6)
    assert r.passed, (r.max_abs_error, r.max_rel_error)


def test_mish_saturates_without_overflow():
    for dtype in (np.float32, np.float64):
        x = bp.tensor(np.array([-1000, -100, -20, 0, 20, 100, 1000], dtype), requires_grad=True)
        y = mish(x)
        y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype
        assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad))
        np.testing.assert_allclose(y.data[-3:], [20, 100, 1000], rtol=1e-6)
        np.testing.assert_allclose(x.grad[[0, -1]], [0, 1], atol=1e-6)


def test_mish_rejects_integers():
    with pytest.raises(BpcliError, match="int64"):
        mish(bp.tensor([1, 2]))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.5])
def test_swish_finite_differences(beta):
    r = gradcheck(lambda x: swish(x, beta), [x64((3, 4), seed=1)], atol=1e-8, rtol=1e-6)
    assert r.passed


def test_swish_learnable_beta_gets_a_gradient():
    b = bp.tensor(np.array(1.3), requires_grad=True)
    r = gradcheck(swish, [x64((2, 5), seed=2), b], atol=1e-8, rtol=1e-6)
    assert r.passed and b.grad is not None


def test_swish_layer_parameters_and_config():
    fixed, learn = Swish(beta=2.0), Swish(beta=0.5, learnable=True)
    assert list(fixed.parameters()) == [] and fixed.get_config()["beta"] == 2.0
    assert list(learn.state_dict()) == ["beta"] and learn.beta.dtype == np.float32
    x = bp.tensor(np.linspace(-3, 3, 7, dtype=np.float32))
    learn(x).sum().backward()
    assert learn.beta.grad is not None and learn(x).dtype == np.float32
    assert Swish.from_config(learn.get_config()).get_config() == learn.get_config()


@pytest.mark.torch
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_mish_and_swish_match_torch(dtype, tol):
    torch = pytest.importorskip("torch")
    a = (4 * np.random.default_rng(3).standard_normal((5, 6))).astype(dtype)
    g = np.random.default_rng(4).standard_normal((5, 6)).astype(dtype)
    fns = [
        (Mish(), torch.nn.functional.mish),
        (Swish(), torch.nn.functional.silu),
        (Swish(beta=1.7), lambda t: t * torch.sigmoid(1.7 * t)),
    ]
    for layer, tfn in fns:
        x, tx = bp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        y, ty = layer(x), tfn(tx)
        (y * bp.tensor(g)).sum().backward()
        (ty * torch.tensor(g)).sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol)
