"""Compare a bpcli layer with the same torch layer: outputs and all gradients, same state."""

from __future__ import annotations

import numpy as np

import bpcli as bp

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def copy_state(ours, theirs) -> None:
    """Load our state_dict into the torch module (strict: keys and shapes must agree)."""
    import torch

    theirs.load_state_dict({k: torch.tensor(np.array(v)) for k, v in ours.state_dict().items()})


def run_both(ours, theirs, x: np.ndarray, training: bool, seed: int = 0):
    """One forward and backward of each with the same input and upstream gradient."""
    import torch

    ours.train(training)
    theirs.train(training)
    ours.zero_grad()
    theirs.zero_grad(set_to_none=True)
    xo = bp.tensor(x, requires_grad=x.dtype.kind == "f")
    xt = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    yo, yt = ours(xo), theirs(xt)
    g = np.random.default_rng(seed).standard_normal(yo.shape).astype(yo.dtype)
    yo.backward(g)
    yt.backward(torch.tensor(g))
    return xo, xt, yo, yt


def assert_matches(ours, theirs, x: np.ndarray, training: bool = True, tol: dict | None = None):
    """Output, input gradient and every parameter gradient of ours equal torch's."""
    tol = tol or TOL[x.dtype.type if x.dtype.kind == "f" else np.float32]
    xo, xt, yo, yt = run_both(ours, theirs, x, training)
    assert yo.dtype == yt.detach().numpy().dtype
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), **tol, err_msg="output")
    if xt.requires_grad:
        assert xo.grad.dtype == x.dtype
        np.testing.assert_allclose(xo.grad, xt.grad.numpy(), **tol, err_msg="input grad")
    theirs_p = dict(theirs.named_parameters())
    ours_p = dict(ours.named_parameters())
    assert sorted(ours_p) == sorted(theirs_p)
    for name, p in ours_p.items():
        assert p.grad is not None and p.grad.dtype == p.dtype, name
        np.testing.assert_allclose(p.grad, theirs_p[name].grad.numpy(), **tol, err_msg=name)
    return yo, yt


def randn(shape, dtype=np.float32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
