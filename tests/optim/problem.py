"""A small least-squares problem with gradients computed in numpy, run by bpcli and torch."""

from __future__ import annotations

import numpy as np

import bpcli as bp

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 4))
Y = RNG.normal(size=(8, 3))
T = RNG.normal(size=5)
INIT = [RNG.normal(size=(4, 3)), RNG.normal(size=3), RNG.normal(size=5)]


def grads(arrays: list[np.ndarray], k: int) -> list[np.ndarray | None]:
    """Gradients at step k; the third parameter has none on every third step."""
    w, b, c = (np.asarray(a, dtype=np.float64) for a in arrays)
    r = X @ w + b - Y
    gc = None if k % 3 == 2 else c - T + 0.3 * np.sin(3 * c)
    return [X.T @ r / len(X), r.mean(0), gc]


def groups_of(params: list, group_opts: dict | None):
    """One group, or two: [w, b] with the defaults and [c] with ``group_opts``."""
    if group_opts is None:
        return params
    return [{"params": params[:2]}, {"params": params[2:], **group_opts}]


def bp_params(dtype=np.float64, init=None) -> list:
    init = INIT if init is None else init
    return [bp.tensor(np.array(a, dtype=dtype), requires_grad=True) for a in init]


def bp_run(opt, params: list, steps: range) -> list[list[np.ndarray]]:
    traj = []
    for k in steps:
        for p, g in zip(params, grads([p.data for p in params], k), strict=True):
            p.grad = None if g is None else g.astype(p.dtype)
        opt.step()
        traj.append([p.data.copy() for p in params])
    return traj


def torch_run(cls, kwargs: dict, group_opts, steps: int, dtype=np.float64):
    import torch

    params = [torch.tensor(np.array(a, dtype=dtype), requires_grad=True) for a in INIT]
    opt = cls(groups_of(params, group_opts), **kwargs)
    traj = []
    for k in range(steps):
        for p, g in zip(params, grads([p.detach().numpy() for p in params], k), strict=True):
            p.grad = None if g is None else torch.from_numpy(g.astype(dtype))
        opt.step()
        traj.append([p.detach().numpy().copy() for p in params])
    return traj
