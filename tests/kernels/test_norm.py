"""bpcli/kernels/norm.py against naive numpy references, float32 and float64."""

import numpy as np
import pytest

from bpcli.kernels import norm as K

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _vjp_normalise(g, xh, inv, axes):
    """Reference backward of xh = (x - mean) * inv over ``axes`` given dL/dxh = g."""
    return inv * (g - g.mean(axes, keepdims=True) - xh * (g * xh).mean(axes, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 4), (7, 2, 1), (2, 4, 9)])
def test_batchnorm(shape, training, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gam, bet, rm = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(3))
    rv = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    eps = 1e-5
    x64 = x.astype(np.float64)
    if training:
        mean, var = x64.mean((0, 2)), x64.var((0, 2))
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    inv = 1 / np.sqrt(var + eps)
    xh = (x64 - mean[:, None]) * inv[:, None]
    y_ref = xh * gam[:, None] + bet[:, None]
    y, m, v, iv = K.batchnorm_fwd(x, gam, bet, rm, rv, eps, training)
    assert y.dtype == m.dtype == v.dtype == iv.dtype == dtype
    np.testing.assert_allclose(y, y_ref, **_tol(dtype))
    np.testing.assert_allclose(m, mean, **_tol(dtype))
    np.testing.assert_allclose(v, var, **_tol(dtype))
    gx = g.astype(np.float64) * gam[:, None]
    if training:
        dx_ref = _vjp_normalise(gx, xh, inv[:, None], (0, 2))
    else:
        dx_ref = gx * inv[:, None]
    dx, dgam, dbet = K.batchnorm_bwd(g, x, m, iv, gam, training)
    assert dx.dtype == dgam.dtype == dbet.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **_tol(dtype))
    np.testing.assert_allclose(dgam, (g * xh).sum((0, 2)), **_tol(dtype))
    np.testing.assert_allclose(dbet, g.astype(np.float64).sum((0, 2)), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 7), (1, 1), (3, 64)])
def test_layernorm(shape, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    gam, bet = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(2))
    g = rng.standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    mean = x64.mean(1, keepdims=True)
    inv = 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    xh = (x64 - mean) * inv
    y, m, iv = K.layernorm_fwd(x, gam, bet, 1e-5)
    assert y.dtype == m.dtype == iv.dtype == dtype
    np.testing.assert_allclose(y, xh * gam + bet, **_tol(dtype))
    dx, dgam, dbet = K.layernorm_bwd(g, x, m, iv, gam)
    assert dx.dtype == dgam.dtype == dbet.dtype == dtype
    np.testing.assert_allclose(
        dx, _vjp_normalise(g * gam.astype(np.float64), xh, inv, 1), **_tol(dtype)
    )
    np.testing.assert_allclose(dgam, (g * xh).sum(0), **_tol(dtype))
    np.testing.assert_allclose(dbet, g.astype(np.float64).sum(0), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "groups"), [((2, 6, 5), 3), ((3, 4, 1), 1), ((1, 4, 3), 4)])
def test_groupnorm(shape, groups, dtype):
    rng = np.random.default_rng(2)
    n, c, _ = shape
    x = (rng.standard_normal(shape) + 0.5).astype(dtype)
    gam, bet = (rng.standard_normal(c).astype(dtype) for _ in range(2))
    g = rng.standard_normal(shape).astype(dtype)
    xg = x.astype(np.float64).reshape(n, groups, -1)
    mean = xg.mean(2, keepdims=True)
    inv = 1 / np.sqrt(xg.var(2, keepdims=True) + 1e-5)
    xh = ((xg - mean) * inv).reshape(shape)
    y, m, iv = K.groupnorm_fwd(x, gam, bet, groups, 1e-5)
    assert y.dtype == m.dtype == iv.dtype == dtype
    np.testing.assert_allclose(y, xh * gam[:, None] + bet[:, None], **_tol(dtype))
    dx, dgam, dbet = K.groupnorm_bwd(g, x, m, iv, gam, groups)
    assert dx.dtype == dgam.dtype == dbet.dtype == dtype
    gg = (g * gam[:, None].astype(np.float64)).reshape(n, groups, -1)
    dx_ref = _vjp_normalise(gg, xh.reshape(n, groups, -1), inv, 2).reshape(shape)
    np.testing.assert_allclose(dx, dx_ref, **_tol(dtype))
    np.testing.assert_allclose(dgam, (g * xh).sum((0, 2)), **_tol(dtype))
    np.testing.assert_allclose(dbet, g.astype(np.float64).sum((0, 2)), **_tol(dtype))
