"""Lion against a numpy reference; PolynomialLR against torch's."""

import bpcli as bp
import numpy as np
import pytest
from bpcli.errors import BpcliError
from bpcli.optim import SGD, flatten_state, unflatten_state

from bpcli_extras.optim import Lion, PolynomialLR


def ref_lion(p, grads, lr, betas, wd):
    p, m = p.copy(), np.zeros_like(p)
    for g in grads:
        c = betas[0] * m + (1 - betas[0]) * g
        p = p - lr * (np.sign(c) + wd * p)
        m = betas[1] * m + (1 - betas[1]) * g
    return p, m


def run_lion(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.astype(p.dtype)
        opt.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr,betas,wd", [(1e-4, (0.9, 0.99), 0.0), (3e-2, (0.8, 0.95), 0.1),
                                         (1e-2, (0.0, 1.0), 1.0)])  # fmt: skip
def test_lion_matches_reference_over_20_steps(dtype, lr, betas, wd):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(20)]
    p = bp.tensor(p0.astype(dtype), requires_grad=True)
    opt = Lion([p], lr=lr, betas=betas, weight_decay=wd)
    run_lion(opt, [p], [[g] for g in grads])
    want_p, want_m = ref_lion(p0, grads, lr, betas, wd)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert p.dtype == dtype and opt.state[p]["exp_avg"].dtype == dtype
    np.testing.assert_allclose(p.data, want_p, rtol=tol, atol=tol)
    np.testing.assert_allclose(opt.state[p]["exp_avg"], want_m, rtol=tol, atol=tol)


def test_lion_defaults_groups_and_maximize():
    a = bp.tensor(np.ones(3), requires_grad=True)
    b = bp.tensor(np.ones(2), requires_grad=True)
    opt = Lion([{"params": [a]}, {"params": [b], "lr": 0.5}], maximize=True)
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["weight_decay"]) == (1e-4, (0.9, 0.99), 0.0)
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 1 + 1e-4)
    np.testing.assert_allclose(b.data, 1.5)


def test_lion_state_dict_resumes_exactly():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(5)
    grads = [[rng.standard_normal(5)] for _ in range(20)]
    p = bp.tensor(p0.copy(), requires_grad=True)
    opt = Lion([p], lr=1e-2, weight_decay=0.1)
    run_lion(opt, [p], grads[:10])
    tree, arrays = flatten_state(opt.state_dict())
    q = bp.tensor(p.data.copy(), requires_grad=True)
    resumed = Lion([q])
    resumed.load_state_dict(unflatten_state(tree, arrays))
    assert resumed.param_groups[0]["lr"] == 1e-2 and resumed.param_groups[0]["betas"] == (0.9, 0.99)
    run_lion(opt, [p], grads[10:])
    run_lion(resumed, [q], grads[10:])
    np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("kw,match", [({"lr": -1.0}, "lr"), ({"betas": (0.9,)}, "betas"),
                                      ({"betas": (0.9, 1.5)}, r"betas\[1\]"),
                                      ({"weight_decay": -0.1}, "weight_decay")])  # fmt: skip
def test_lion_bad_options(kw, match):
    with pytest.raises(BpcliError, match=match):
        Lion([bp.tensor(np.ones(2), requires_grad=True)], **kw)


def bp_lrs(steps, **kw):
    p = bp.tensor(np.ones(2), requires_grad=True)
    opt = SGD([{"params": [p]}, {"params": [bp.tensor(np.ones(1), requires_grad=True)],
                                 "lr": 0.3}], lr=0.05)  # fmt: skip
    sched = PolynomialLR(opt, **kw)
    out = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
    return out, sched


@pytest.mark.torch
@pytest.mark.parametrize("kw", [{}, {"total_iters": 10, "power": 0.9},
                                {"total_iters": 4, "power": 2.0}, {"total_iters": 1}])  # fmt: skip
def test_polynomial_matches_torch(kw):
    torch = pytest.importorskip("torch")
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.3}], lr=0.05)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, **kw)
    want = [sched.get_last_lr()]
    for _ in range(15):
        opt.step()
        sched.step()
        want.append(sched.get_last_lr())
    got, _ = bp_lrs(15, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_polynomial_closed_form_and_resume():
    got, sched = bp_lrs(6, total_iters=10, power=0.9)
    np.testing.assert_allclose(got[6], sched._closed_form(), rtol=1e-12)
    np.testing.assert_allclose(got[6][0], 0.05 * (1 - 6 / 10) ** 0.9, rtol=1e-12)
    state = sched.state_dict()
    more, _ = bp_lrs(9, total_iters=10, power=0.9)
    sched.load_state_dict(state)
    for _ in range(3):
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), more[9], rtol=1e-12)


@pytest.mark.parametrize("kw,match", [({"total_iters": 0}, "total_iters"),
                                      ({"total_iters": 2.5}, "total_iters"),
                                      ({"power": -1.0}, "power")])  # fmt: skip
def test_polynomial_bad_options(kw, match):
    opt = SGD([bp.tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(BpcliError, match=match):
        PolynomialLR(opt, **kw)
