"""bpcli/kernels/rnn.py against naive numpy references, float32 and float64."""

import numpy as np
import pytest

from bpcli.kernels import rnn as K

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def _sig(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "h"), [(3, 5), (1, 1), (8, 16)])
def test_lstm_cell(n, h, dtype):
    rng = np.random.default_rng(0)
    gates = (rng.standard_normal((n, 4 * h)) * 2).astype(dtype)
    c, dh, dc = (rng.standard_normal((n, h)).astype(dtype) for _ in range(3))
    z = gates.astype(np.float64)
    i, f, g, o = (
        _sig(z[:, :h]),
        _sig(z[:, h : 2 * h]),
        np.tanh(z[:, 2 * h : 3 * h]),
        _sig(z[:, 3 * h :]),
    )
    c2 = f * c + i * g
    h2 = o * np.tanh(c2)
    half = np.concatenate([z[:, : 2 * h] / 2, z[:, 2 * h : 3 * h], z[:, 3 * h :] / 2], 1)
    act, cy = K.lstm_cell_fwd(np.tanh(half).astype(dtype), c)
    assert act.dtype == cy.dtype == dtype
    np.testing.assert_allclose(act, np.concatenate([i, f, g, o], 1), **_tol(dtype))
    np.testing.assert_allclose(cy, c2, **_tol(dtype))
    np.testing.assert_allclose(o * np.tanh(cy), h2, **_tol(dtype))
    tc = np.tanh(cy)
    dct = dc + dh * o * (1 - np.tanh(c2) ** 2)
    ref = np.concatenate(
        [dct * g * i * (1 - i), dct * c * f * (1 - f), dct * i * (1 - g**2),
         dh * np.tanh(c2) * o * (1 - o)], axis=1,
    )  # fmt: skip
    dgates, dcp = K.lstm_cell_bwd(dh, dc, act, c, tc)
    assert dgates.dtype == dcp.dtype == dtype
    np.testing.assert_allclose(dgates, ref, **_tol(dtype))
    np.testing.assert_allclose(dcp, dct * f, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "h"), [(3, 5), (1, 1), (8, 16)])
def test_gru_cell(n, h, dtype):
    rng = np.random.default_rng(1)
    gi, gh = (rng.standard_normal((n, 3 * h)).astype(dtype) for _ in range(2))
    hp, dh2 = (rng.standard_normal((n, h)).astype(dtype) for _ in range(2))
    a, b = gi.astype(np.float64), gh.astype(np.float64)
    r = _sig(a[:, :h] + b[:, :h])
    z = _sig(a[:, h : 2 * h] + b[:, h : 2 * h])
    nn = np.tanh(a[:, 2 * h :] + r * b[:, 2 * h :])
    trz = np.tanh((a[:, : 2 * h] + b[:, : 2 * h]) / 2).astype(dtype)
    act = K.gru_cell_fwd(trz, gi, gh)
    assert act.dtype == dtype
    want = np.concatenate([r, z, a[:, 2 * h :] + r * b[:, 2 * h :]], 1)
    np.testing.assert_allclose(act, want, **_tol(dtype))
    act[:, 2 * h :] = np.tanh(act[:, 2 * h :])
    dn = dh2 * (1 - z) * (1 - nn**2)
    dz = dh2 * (hp - nn) * z * (1 - z)
    dr = dn * b[:, 2 * h :] * r * (1 - r)
    dgi, dgh, dh = K.gru_cell_bwd(dh2, act, gh, hp)
    assert dgi.dtype == dgh.dtype == dh.dtype == dtype
    np.testing.assert_allclose(dgi, np.concatenate([dr, dz, dn], 1), **_tol(dtype))
    np.testing.assert_allclose(dgh, np.concatenate([dr, dz, dn * r], 1), **_tol(dtype))
    np.testing.assert_allclose(dh, dh2 * z, **_tol(dtype))
