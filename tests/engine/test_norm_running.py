"""batch_norm's in-place running-statistics update against torch, and the user errors of the
norm and recurrent-cell functions."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F

torch = pytest.importorskip("torch")


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 2)])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_running_stats_follow_torch(shape, dtype, as_tensor):
    rng = np.random.default_rng(0)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    brm, brv = (bp.tensor(rm.copy()), bp.tensor(rv.copy())) if as_tensor else (rm.copy(), rv.copy())
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    w = bp.tensor(rng.standard_normal(3).astype(dtype), requires_grad=True)
    for step in range(3):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        y = F.batch_norm(x, brm, brv, w, None, training=True, momentum=0.25)
        torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, None, None, True, 0.25)
        assert y.dtype == dtype
    tol = {"rtol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12}
    got_m, got_v = (brm.numpy(), brv.numpy()) if as_tensor else (brm, brv)
    np.testing.assert_allclose(got_m, trm.numpy(), **tol)
    np.testing.assert_allclose(got_v, trv.numpy(), **tol)
    assert got_m.dtype == dtype
    y.sum().backward()  # the update does not trip the saved-input version check
    assert w.grad.dtype == dtype


def test_eval_leaves_running_stats_and_no_grad_still_updates():
    x = np.random.default_rng(1).standard_normal((6, 2)).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    F.batch_norm(x, rm, rv, training=False)
    assert (rm == 0).all() and (rv == 1).all()
    with bp.no_grad():
        F.batch_norm(x, rm, rv, training=True)
    assert (rm != 0).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: F.batch_norm(x, np.zeros(3), np.ones(3)), "float64 but the input is float32"),
        (lambda x: F.batch_norm(x, np.zeros(2, np.float32), np.ones(3, np.float32)), r"\(2,\)"),
        (lambda x: F.batch_norm(x[:1, :, :1], None, None, training=True), "more than 1 value"),
        (lambda x: F.batch_norm(x, None, None), "needed when training=False"),
        (lambda x: F.batch_norm(x, None, None, training=True, momentum=None), "momentum=None"),
        (lambda x: F.batch_norm(x, None, None, np.ones(4, np.float32), training=True), "weight"),
        (lambda x: F.layer_norm(x, (3,)), r"normalized_shape \(3,\)"),
        (lambda x: F.group_norm(x, 2), "do not split into 2 groups"),
        (lambda x: F.batch_norm(x[0, 0], None, None, training=True), "at least 2 dims"),
    ],
)
def test_norm_errors(call, match):
    x = bp.tensor(np.ones((4, 3, 5), np.float32))
    with pytest.raises(bp.BpcliError, match=match):
        call(x)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x, w, u: F.lstm_cell(x, None, None, w, u[:, :3]), "do not fit"),
        (lambda x, w, u: F.lstm_cell(x, None, None, w[:7], u), r"4\*hidden"),
        (lambda x, w, u: F.lstm_cell(x, np.zeros((2, 4), np.float32), None, w, u), "hx has shape"),
        (lambda x, w, u: F.lstm_cell(x, None, None, w, u, np.zeros(16)), "dtype mismatch"),
        (lambda x, w, u: F.gru_cell(x, None, w, u), r"3\*hidden"),
        (lambda x, w, u: F.lstm_cell(x, None, None, w, u, np.zeros(5, np.float32)), "b_ih"),
    ],
)
def test_cell_errors(call, match):
    x = bp.tensor(np.ones((3, 5), np.float32))
    w = bp.tensor(np.ones((16, 5), np.float32))
    u = bp.tensor(np.ones((16, 4), np.float32))
    with pytest.raises(bp.BpcliError, match=match):
        call(x, w, u)
