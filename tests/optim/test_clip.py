"""Gradient clipping equals torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bpcli as bp
from bpcli import optim
from bpcli.errors import BpcliError

SHAPES = [(3, 4), (5,), (), (2, 0), (7,)]


def _params(dtype, seed=0, nan=False, empty=True):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    if nan:
        arrays[1][2] = np.nan
    ps = [bp.tensor(np.zeros(s, dtype=dtype), requires_grad=True) for s in SHAPES]
    for i, (p, a) in enumerate(zip(ps, arrays, strict=True)):
        # one parameter without a gradient (two: torch cannot take the inf-norm of an empty one)
        p.grad = None if i == 4 or (i == 3 and not empty) else a.copy()
    return ps, arrays


def _torch_params(torch, arrays, empty=True):
    ts = [torch.zeros(a.shape, dtype=torch.from_numpy(a).dtype) for a in arrays]
    for i, (t, a) in enumerate(zip(ts, arrays, strict=True)):
        t.grad = None if i == 4 or (i == 3 and not empty) else torch.from_numpy(a.copy())
    return ts


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    empty = norm_type != math.inf
    ps, arrays = _params(dtype, empty=empty)
    total = optim.clip_grad_norm_(ps, max_norm, norm_type)
    ts = _torch_params(torch, arrays, empty)
    ttotal = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type).item()
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ttotal, rtol=rtol)
    for p, t in zip(ps, ts, strict=True):
        if t.grad is None:
            assert p.grad is None
        else:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=rtol, atol=1e-300)


@pytest.mark.torch
def test_nonfinite_norm():
    torch = pytest.importorskip("torch")
    ps, arrays = _params(np.float64, nan=True)
    with pytest.raises(BpcliError, match="not finite"):
        optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = optim.clip_grad_norm_(ps, 1.0)
    ts = _torch_params(torch, arrays)
    assert math.isnan(total) and math.isnan(torch.nn.utils.clip_grad_norm_(ts, 1.0).item())
    for p, t in zip(ps, ts, strict=True):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    ps, arrays = _params(dtype, seed=1)
    optim.clip_grad_value_(ps, 0.7)
    ts = _torch_params(torch, arrays)
    torch.nn.utils.clip_grad_value_(ts, 0.7)
    for p, t in zip(ps, ts, strict=True):
        if p.grad is not None:
            assert p.grad.dtype == dtype
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_edge_cases():
    assert optim.clip_grad_norm_([bp.tensor([1.0], requires_grad=True)], 1.0) == 0.0
    p = bp.tensor([0.0, 0.0], requires_grad=True)
    p.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_(p, 10.0) == 5.0  # a single tensor is accepted
    assert np.array_equal(p.grad, [3.0, 4.0])
    with pytest.raises(BpcliError, match="max_norm"):
        optim.clip_grad_norm_(p, -1.0)
    with pytest.raises(BpcliError, match="clip_value"):
        optim.clip_grad_value_(p, -1.0)
