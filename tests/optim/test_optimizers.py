"""Optimizers follow torch.optim's parameter trajectories; state dicts resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bpcli as bp
from bpcli import optim
from bpcli.errors import BpcliError
from tests.optim.problem import INIT, bp_params, bp_run, groups_of, torch_run

# (bpcli class name, kwargs, options of a second param group (or None))
CONFIGS = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), None),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05), dict(lr=0.2)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True), None),
    ("RMSprop", dict(), None),
    ("RMSprop", dict(lr=0.01, momentum=0.9), dict(weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True), None),
    (
        "RMSprop",
        dict(lr=0.005, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.01),
        dict(lr=0.02, momentum=0.0),
    ),
    ("Adagrad", dict(), None),
    (
        "Adagrad",
        dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
        dict(lr=0.05, lr_decay=0.0),
    ),
    ("Adam", dict(lr=0.01), None),
    ("Adam", dict(lr=0.01, amsgrad=True), dict(lr=0.03, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True), None),
    ("Adam", dict(lr=0.01, betas=(0.0, 0.9), maximize=True), None),
    ("AdamW", dict(lr=0.01), None),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True), dict(lr=0.01, weight_decay=0.0)),
    ("NAdam", dict(), None),
    ("NAdam", dict(lr=0.01, weight_decay=0.01), dict(lr=0.03)),
    (
        "NAdam",
        dict(lr=0.01, momentum_decay=1e-2, decoupled_weight_decay=True, weight_decay=0.1),
        None,
    ),
]
IDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(CONFIGS)]


@pytest.fixture
def torch64():
    # torch keeps NAdam's mu_product and the step counters in its default dtype.
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _make(name, kwargs, group_opts, params):
    return getattr(optim, name)(groups_of(params, group_opts), **kwargs)


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs", "group_opts"), CONFIGS, ids=IDS)
def test_trajectory_matches_torch(torch64, name, kwargs, group_opts):
    params = bp_params()
    ours = bp_run(_make(name, kwargs, group_opts, params), params, range(50))
    theirs = torch_run(getattr(torch64.optim, name), kwargs, group_opts, 50)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14, err_msg=f"step {k} p{i}")
    # the gradient-free steps really were skipped: c moved on only 2 of every 3 steps
    assert np.array_equal(ours[1][2], ours[2][2]) and not np.array_equal(ours[0][2], ours[1][2])


@pytest.mark.torch
@pytest.mark.parametrize("idx", [1, 8, 11, 13, 16, 19])
def test_float32_stays_float32(torch64, idx):
    name, kwargs, group_opts = CONFIGS[idx]
    params = bp_params(np.float32)
    opt = _make(name, kwargs, group_opts, params)
    ours = bp_run(opt, params, range(30))
    assert all(p.dtype == np.float32 for p in params)
    for st in opt.state.values():
        for v in st.values():
            assert not isinstance(v, np.ndarray) or v.dtype == np.float32
    theirs = torch_run(getattr(torch64.optim, name), kwargs, group_opts, 30, np.float32)
    for a, b in zip(ours[-1], theirs[-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def _save_load(sd: dict) -> dict:
    """What the trainer does: arrays to an npz-like dict, the rest through JSON."""
    tree, arrays = optim.flatten_state(sd)
    tree = json.loads(json.dumps(tree))
    return optim.unflatten_state(tree, {k: v.copy() for k, v in arrays.items()})


@pytest.mark.parametrize(("name", "kwargs", "group_opts"), CONFIGS, ids=IDS)
def test_state_dict_resume_is_exact(name, kwargs, group_opts):
    params = bp_params()
    straight = bp_run(_make(name, kwargs, group_opts, params), params, range(50))

    params = bp_params()
    opt = _make(name, kwargs, group_opts, params)
    bp_run(opt, params, range(20))
    saved, saved_params = _save_load(opt.state_dict()), [p.data.copy() for p in params]
    del opt
    params = bp_params(init=saved_params)
    opt = _make(name, {}, None if group_opts is None else {}, params)  # options come from sd
    opt.load_state_dict(saved)
    resumed = bp_run(opt, params, range(20, 50))
    for a, b in zip(straight[20:], resumed, strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)


def test_state_dict_is_plain():
    params = bp_params()
    opt = optim.Adam(params, amsgrad=True)
    bp_run(opt, params, range(3))
    tree, arrays = optim.flatten_state(opt.state_dict())
    json.dumps(tree, allow_nan=False)
    assert set(arrays) == {
        f"state.{i}.{k}" for i in range(3) for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    }
    assert tree["param_groups"][0]["betas"] == [0.9, 0.999]
    assert tree["state"]["0"]["step"] == 3.0


def test_load_state_dict_checks_shapes_and_groups():
    params = bp_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    bp_run(opt, params, range(2))
    sd = opt.state_dict()
    with pytest.raises(BpcliError, match="param groups"):
        optim.SGD(groups_of(bp_params(), {}), lr=0.1).load_state_dict(sd)
    other = [bp.tensor(np.zeros((2, 2)), requires_grad=True), *bp_params()[1:]]
    with pytest.raises(BpcliError, match="shape"):
        optim.SGD(other, lr=0.1).load_state_dict(sd)


def test_zero_grad_and_step_versions():
    params = bp_params()
    opt = optim.SGD(params, lr=0.1)
    bp_run(opt, params, range(1))
    v = params[0]._version
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in params if p.grad is not None)
    opt.step()
    assert params[0]._version == v + 1  # a stale graph cannot backprop through the new values
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_add_param_group_and_errors():
    params = bp_params()
    opt = optim.Adam(params[:2], lr=0.1)
    opt.add_param_group({"params": params[2], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(BpcliError, match="more than one param group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(BpcliError, match="lr=-1"):
        opt.add_param_group({"params": [bp.tensor([1.0], requires_grad=True)], "lr": -1})
    with pytest.raises(BpcliError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(BpcliError, match="single Tensor"):
        optim.SGD(params[0], lr=0.1)


BAD = [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(momentum=-0.5), "momentum"),
    ("SGD", dict(weight_decay=-1.0), "weight_decay"),
    ("SGD", dict(nesterov=True), "nesterov"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    ("RMSprop", dict(alpha=1.5), "alpha"),
    ("RMSprop", dict(eps=-1e-8), "eps"),
    ("RMSprop", dict(momentum=-0.1), "momentum"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    ("Adam", dict(betas=(1.0, 0.999)), "betas"),
    ("Adam", dict(betas=(0.9, -0.1)), "betas"),
    ("Adam", dict(betas=(0.9,)), "betas"),
    ("Adam", dict(lr=float("nan")), "lr"),
    ("AdamW", dict(weight_decay=-0.01), "weight_decay"),
    ("NAdam", dict(momentum_decay=-1.0), "momentum_decay"),
]


@pytest.mark.parametrize(("name", "kwargs", "option"), BAD)
def test_bad_options(name, kwargs, option):
    with pytest.raises(BpcliError) as e:
        getattr(optim, name)(bp_params(), **kwargs)
    assert e.value.where == name and option in e.value.msg


def test_builtins_register_every_optimizer():
    from bpcli.builtins.optimizers import bpcli_register_optimizers

    seen = {}
    bpcli_register_optimizers(lambda name, obj: seen.setdefault(name, obj))
    assert seen == {
        "sgd": optim.SGD,
        "rmsprop": optim.RMSprop,
        "adagrad": optim.Adagrad,
        "adam": optim.Adam,
        "adamw": optim.AdamW,
        "nadam": optim.NAdam,
    }
    assert len(INIT) == 3
