"""Learning-rate schedules follow torch.optim.lr_scheduler's trajectories and resume exactly."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import bpcli as bp
from bpcli import optim
from bpcli.errors import BpcliError
from bpcli.optim import lr_scheduler as lrs
from tests.optim.schedule_helpers import make_opt, row, trajectory


def _opt(mod, kind="sgd"):
    return make_opt(mod, kind, (None, 0.03))


STEPS = 100


# name -> function(lr_scheduler module, optimizer) -> scheduler; the same code builds both.
SCHEDULES = {
    "step": lambda lib, o: lib.StepLR(o, step_size=7, gamma=0.5),
    "multistep": lambda lib, o: lib.MultiStepLR(o, milestones=[60, 10, 30, 30], gamma=0.3),
    "exponential": lambda lib, o: lib.ExponentialLR(o, gamma=0.97),
    "cosine": lambda lib, o: lib.CosineAnnealingLR(o, T_max=30, eta_min=1e-3),
    "cosine_long": lambda lib, o: lib.CosineAnnealingLR(o, T_max=100),
    "restarts": lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=10, eta_min=1e-4),
    "restarts_mult": lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
    "linear": lambda lib, o: lib.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=20),
    "linear_default": lambda lib, o: lib.LinearLR(o),
    "sequential": lambda lib, o: lib.SequentialLR(
        o, [lib.LinearLR(o, 0.1, 1.0, 10), lib.CosineAnnealingLR(o, T_max=90)], milestones=[10]
    ),
    "sequential3": lambda lib, o: lib.SequentialLR(
        o,
        [lib.ExponentialLR(o, 0.9), lib.StepLR(o, 5, 0.5), lib.MultiStepLR(o, [20, 40])],
        milestones=[15, 50],
    ),
    "onecycle": lambda lib, o: lib.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
    "onecycle_linear3": lambda lib, o: lib.OneCycleLR(
        o,
        max_lr=0.8,
        epochs=10,
        steps_per_epoch=10,
        pct_start=0.25,
        anneal_strategy="linear",
        three_phase=True,
        div_factor=10.0,
    ),
}


def _warmup(lib, o, after, start_factor):
    """bpcli's WarmupLR, or the torch SequentialLR it stands for."""
    if lib is lrs:
        return lib.WarmupLR(o, 10, after=after, start_factor=start_factor)
    warm = lib.LinearLR(o, start_factor, 1.0, 10)
    return lib.SequentialLR(o, [warm, after] if after else [warm], [10] if after else [])


SCHEDULES["warmup_cosine"] = lambda lib, o: _warmup(
    lib, o, lib.CosineAnnealingLR(o, T_max=90), 0.05
)
SCHEDULES["warmup_only"] = lambda lib, o: _warmup(lib, o, None, 0.01)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_torch(name, kind):
    torch = pytest.importorskip("torch")
    make = SCHEDULES[name]
    opt = _opt(optim, kind)
    sched = make(lrs, opt)
    ours = [row(opt, sched), *trajectory(opt, sched, STEPS - 1)]
    topt = _opt(torch.optim, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = make(torch.optim.lr_scheduler, topt)
        theirs = [row(topt, tsched), *trajectory(topt, tsched, STEPS - 1)]
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-12, atol=0)


def _roundtrip(sd):
    tree, arrays = optim.flatten_state(sd)
    return optim.unflatten_state(json.loads(json.dumps(tree)), arrays)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_resume_is_exact(name):
    make = SCHEDULES[name]
    opt = _opt(optim, "adam")
    straight = trajectory(opt, make(lrs, opt), STEPS - 1)
    opt = _opt(optim, "adam")
    sched = make(lrs, opt)
    trajectory(opt, sched, 40)
    opt_sd, sched_sd = _roundtrip(opt.state_dict()), _roundtrip(sched.state_dict())
    opt = _opt(optim, "adam")
    sched = make(lrs, opt)  # as torch wants: build the schedule, then load both
    opt.load_state_dict(opt_sd)
    sched.load_state_dict(sched_sd)
    assert trajectory(opt, sched, STEPS - 1, 40) == straight[40:]


def _metrics(n: int) -> list[float]:
    return [max(1.0 - 0.05 * k, 0.3) + 0.01 * math.sin(k) for k in range(n)]


PLATEAU = [
    dict(),
    dict(mode="min", factor=0.5, patience=3, cooldown=2, min_lr=[1e-3, 2e-3]),
    dict(mode="max", factor=0.7, patience=2, threshold=0.05, threshold_mode="abs"),
    dict(mode="min", factor=0.5, patience=0, threshold=0.1, threshold_mode="rel", min_lr=0.01),
]


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", PLATEAU)
def test_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    series = _metrics(STEPS)
    runs = []
    for mod in (optim, torch.optim):
        opt = _opt(mod)
        sched = mod.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        traj = []
        for m in series:
            sched.step(m)
            traj.append([*sched.get_last_lr(), sched.num_bad_epochs, sched.best])
        runs.append(traj)
    assert runs[0] == runs[1]
    assert runs[0][-1][0] < 0.1 or kwargs.get("mode") == "max"


def test_plateau_resume_is_exact():
    series = _metrics(STEPS)
    kwargs = PLATEAU[1]

    def run(opt, sched, part):
        return [(sched.step(m), sched.get_last_lr())[1] for m in part]

    opt = _opt(optim)
    straight = run(opt, lrs.ReduceLROnPlateau(opt, **kwargs), series)
    opt = _opt(optim)
    sched = lrs.ReduceLROnPlateau(opt, **kwargs)
    run(opt, sched, series[:37])
    opt_sd, sched_sd = _roundtrip(opt.state_dict()), _roundtrip(sched.state_dict())
    opt = _opt(optim)
    sched = lrs.ReduceLROnPlateau(opt, **kwargs)
    sched.load_state_dict(sched_sd)
    opt.load_state_dict(opt_sd)
    assert run(opt, sched, series[37:]) == straight[37:]


BAD = [
    (lambda o: lrs.StepLR(o, step_size=0), "StepLR", "step_size"),
    (lambda o: lrs.MultiStepLR(o, milestones=[1.5]), "MultiStepLR", "milestones"),
    (lambda o: lrs.LinearLR(o, start_factor=0.0), "LinearLR", "start_factor"),
    (lambda o: lrs.LinearLR(o, end_factor=1.5), "LinearLR", "end_factor"),
    (lambda o: lrs.CosineAnnealingLR(o, T_max=0), "CosineAnnealingLR", "T_max"),
    (
        lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=0),
        "CosineAnnealingWarmRestarts",
        "T_mult",
    ),
    (lambda o: lrs.OneCycleLR(o, max_lr=1.0), "OneCycleLR", "total_steps"),
    (
        lambda o: lrs.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
        "OneCycleLR",
        "pct_start",
    ),
    (lambda o: lrs.OneCycleLR(o, max_lr=[1.0], total_steps=10), "OneCycleLR", "max_lr"),
    (lambda o: lrs.ReduceLROnPlateau(o, factor=1.0), "ReduceLROnPlateau", "factor"),
    (lambda o: lrs.ReduceLROnPlateau(o, mode="up"), "ReduceLROnPlateau", "mode"),
    (
        lambda o: lrs.SequentialLR(o, [lrs.StepLR(o, 2)], milestones=[3]),
        "SequentialLR",
        "milestones",
    ),
    (lambda o: lrs.WarmupLR(o, 0), "WarmupLR", "warmup_steps"),
    (lambda o: lrs.StepLR("sgd", 3), "StepLR", "Optimizer"),
]


@pytest.mark.parametrize(("build", "where", "word"), BAD)
def test_bad_options(build, where, word):
    with pytest.raises(BpcliError) as e:
        build(_opt(optim))
    assert e.value.where == where and word in e.value.msg


def test_onecycle_past_total_steps_and_adagrad_momentum():
    opt = _opt(optim)
    sched = lrs.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(2):
        sched.step()
    sched.step()
    with pytest.raises(BpcliError, match="total_steps"):
        sched.step()
    ada = optim.Adagrad([bp.tensor([1.0], requires_grad=True)])
    with pytest.raises(BpcliError, match="cycle_momentum"):
        lrs.OneCycleLR(ada, max_lr=1.0, total_steps=10)


def test_builtins_register_every_schedule():
    from bpcli.builtins.schedules import bpcli_register_schedules

    seen = {}
    bpcli_register_schedules(lambda name, obj: seen.setdefault(name, obj))
    assert set(seen) == {
        "step",
        "multistep",
        "exponential",
        "cosine",
        "cosine_restarts",
        "linear",
        "constant",
        "cyclic",
        "warmup",
        "onecycle",
        "plateau",
        "sequential",
    }
    assert all(isinstance(v, type) and issubclass(v, lrs.LRScheduler) for v in seen.values())


@pytest.mark.torch
def test_restarts_fractional_epochs_match_torch():
    torch = pytest.importorskip("torch")
    runs = []
    for mod in (optim, torch.optim):
        opt = _opt(mod)
        sched = mod.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(12):
                for i in range(4):
                    sched.step(epoch + i / 4)
        runs.append([*sched.get_last_lr(), sched.T_i, sched.T_cur, sched.last_epoch])
    assert runs[0] == runs[1]
