"""ConstantLR, LambdaLR, MultiplicativeLR and CyclicLR follow torch's trajectories to the bit,
resume exactly, and the spec-registered ones (constant, cyclic) train from a spec."""

from __future__ import annotations

import json
import math
import types
import warnings

import numpy as np
import pytest

import bpcli as bp
from bpcli import optim
from bpcli.errors import BpcliError
from bpcli.optim import lr_scheduler as lrs
from tests.cli_helpers import MODELS, one_line_error, run
from tests.optim.schedule_helpers import make_opt, row, trajectory


def _opt(mod, kind="sgd"):
    return make_opt(mod, kind, (None, 0.03, 0.7))


STEPS = 120
SPIRALS = MODELS / "spirals.toml"


class Decay:
    """A callable object: torch saves its ``__dict__`` with the schedule, and so does bpcli."""

    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate**epoch


def _cyclic(**kw):
    return lambda lib, o: lib.CyclicLR(o, **kw)


# name -> function(lr_scheduler module, optimizer) -> scheduler; the same code builds both.
SCHEDULES = {
    "constant": lambda lib, o: lib.ConstantLR(o, factor=0.25, total_iters=7),
    "constant_default": lambda lib, o: lib.ConstantLR(o),
    "lambda": lambda lib, o: lib.LambdaLR(o, lambda e: 0.95**e),
    "lambda_per_group": lambda lib, o: lib.LambdaLR(
        o, [lambda e: 1 / (1 + e), Decay(0.97), lambda e: (e % 10 + 1) / 10]
    ),
    "multiplicative": lambda lib, o: lib.MultiplicativeLR(o, lambda e: 0.97),
    "multiplicative_per_group": lambda lib, o: lib.MultiplicativeLR(
        o, [lambda e: 0.99, lambda e: 1.0 if e % 5 else 0.5, Decay(1.001)]
    ),
    "cyclic": _cyclic(base_lr=0.01, max_lr=0.1, step_size_up=7),
    "cyclic_triangular2": _cyclic(
        base_lr=[0.01, 0.002, 0.05],
        max_lr=[0.1, 0.03, 0.9],
        step_size_up=5,
        step_size_down=9,
        mode="triangular2",
    ),
    "cyclic_exp_range": _cyclic(
        base_lr=0.001,
        max_lr=0.2,
        step_size_up=6,
        mode="exp_range",
        gamma=0.99,
        base_momentum=[0.8, 0.85, 0.7],
        max_momentum=[0.95, 0.9, 0.99],
    ),
    "cyclic_scale_fn_cycle": _cyclic(
        base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=11, scale_fn=lambda x: x**-0.5
    ),
    "cyclic_scale_fn_iterations": _cyclic(
        base_lr=0.01,
        max_lr=0.1,
        step_size_up=9,
        scale_fn=lambda x: math.exp(-x / 150),
        scale_mode="iterations",
    ),
    "cyclic_sawtooth_no_momentum": _cyclic(
        base_lr=0.05, max_lr=0.5, step_size_up=13, step_size_down=0, cycle_momentum=False
    ),
    "warmup_cyclic": lambda lib, o: lib.SequentialLR(
        o,
        [lib.LinearLR(o, 0.1, 1.0, 10), lib.CyclicLR(o, 0.01, 0.1, step_size_up=8)],
        milestones=[10],
    ),
    "constant_then_multiplicative": lambda lib, o: lib.SequentialLR(
        o,
        [lib.ConstantLR(o, 0.5, 4), lib.MultiplicativeLR(o, lambda e: 0.98)],
        milestones=[10],
    ),
    "multiplicative_then_constant": lambda lib, o: lib.SequentialLR(  # closed form at 10
        o,
        [lib.MultiplicativeLR(o, lambda e: 0.98), lib.ConstantLR(o, 0.5, 4)],
        milestones=[10],
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_torch_to_the_bit(name, kind):
    torch = pytest.importorskip("torch")
    make = SCHEDULES[name]
    opt = _opt(optim, kind)
    sched = make(lrs, opt)
    ours = [row(opt, sched), *trajectory(opt, sched, STEPS)]
    topt = _opt(torch.optim, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = make(torch.optim.lr_scheduler, topt)
        theirs = [row(topt, tsched), *trajectory(topt, tsched, STEPS)]
    assert ours == theirs
    assert len({tuple(r) for r in ours}) >= 2  # the schedule moved


def _roundtrip(sd):
    tree, arrays = optim.flatten_state(sd)
    return optim.unflatten_state(json.loads(json.dumps(tree)), arrays)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_resume_is_exact(name):
    make = SCHEDULES[name]
    opt = _opt(optim, "adam")
    straight = trajectory(opt, make(lrs, opt), STEPS)
    opt = _opt(optim, "adam")
    sched = make(lrs, opt)
    trajectory(opt, sched, 53)
    opt_sd, sched_sd = _roundtrip(opt.state_dict()), _roundtrip(sched.state_dict())
    opt = _opt(optim, "adam")
    sched = make(lrs, opt)  # as torch wants: build the schedule, then load both
    opt.load_state_dict(opt_sd)
    sched.load_state_dict(sched_sd)
    assert trajectory(opt, sched, STEPS, 53) == straight[53:]


def test_callable_objects_keep_their_state_functions_do_not():
    opt = _opt(optim)
    fns = [Decay(0.9), lambda e: 1.0, Decay(0.8)]
    sched = lrs.LambdaLR(opt, fns)
    fns[0].rate = 0.5  # state changed during training is saved ...
    sd = _roundtrip(sched.state_dict())
    assert sd["lr_lambdas"] == [{"rate": 0.5}, None, {"rate": 0.8}]
    fresh = [Decay(0.9), lambda e: 1.0, Decay(0.8)]
    lrs.LambdaLR(_opt(optim), fresh).load_state_dict(sd)
    assert fresh[0].rate == 0.5  # ... and restored into the rebuilt schedule's object
    scale = Decay(0.9)
    cyc = lrs.CyclicLR(_opt(optim), 0.01, 0.1, scale_fn=scale)
    scale.rate = 0.7
    again = Decay(0.9)
    lrs.CyclicLR(_opt(optim), 0.01, 0.1, scale_fn=again).load_state_dict(
        _roundtrip(cyc.state_dict())
    )
    assert again.rate == 0.7


BAD = [
    (lambda o: lrs.ConstantLR(o, factor=0.0), "ConstantLR", "factor"),
    (lambda o: lrs.ConstantLR(o, factor=1.5), "ConstantLR", "factor"),
    (lambda o: lrs.ConstantLR(o, total_iters=0), "ConstantLR", "total_iters"),
    (lambda o: lrs.LambdaLR(o, [lambda e: 1.0]), "LambdaLR", "3 param groups"),
    (lambda o: lrs.LambdaLR(o, 0.9), "LambdaLR", "lr_lambda[0]"),
    (lambda o: lrs.MultiplicativeLR(o, [abs, abs, 2]), "MultiplicativeLR", "lr_lambda[2]"),
    (lambda o: lrs.LambdaLR("sgd", abs), "LambdaLR", "Optimizer"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, mode="triangle"), "CyclicLR", "mode"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, step_size_up=0), "CyclicLR", "step_size_up"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, step_size_down=-1), "CyclicLR", "step_size_down"),
    (lambda o: lrs.CyclicLR(o, 0.01, [0.1, 0.2]), "CyclicLR", "max_lr has 2 values"),
    (lambda o: lrs.CyclicLR(o, "0.01", 0.1), "CyclicLR", "base_lr"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, scale_fn="exp"), "CyclicLR", "scale_fn"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, scale_mode="epoch"), "CyclicLR", "scale_mode"),
    (lambda o: lrs.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8]), "CyclicLR", "base_momentum"),
    (lambda o: lrs.CyclicLR("sgd", 0.01, 0.1), "CyclicLR", "Optimizer"),
]


@pytest.mark.parametrize(("build", "where", "word"), BAD)
def test_bad_options(build, where, word):
    with pytest.raises(BpcliError) as e:
        build(_opt(optim))
    assert e.value.where == where and word in e.value.msg


def test_cycle_momentum_needs_momentum_or_betas():
    ada = optim.Adagrad([bp.tensor([1.0], requires_grad=True)])
    with pytest.raises(BpcliError, match="cycle_momentum"):
        lrs.CyclicLR(ada, 0.01, 0.1)
    lrs.CyclicLR(ada, 0.01, 0.1, cycle_momentum=False).step()


def test_registered_names_leave_polynomial_to_the_plugin():
    from bpcli.builtins.schedules import bpcli_register_schedules
    from bpcli.plugins import manager

    seen = {}
    bpcli_register_schedules(lambda name, obj: seen.setdefault(name, obj))
    assert seen["constant"] is lrs.ConstantLR and seen["cyclic"] is lrs.CyclicLR
    assert lrs.LambdaLR not in seen.values() and lrs.MultiplicativeLR not in seen.values()
    # bpcli-extras registers "polynomial": a built-in of that name would stop every run.
    extras = types.ModuleType("fake_extras")
    extras.bpcli_register_schedules = lambda register: register("polynomial", lrs.ConstantLR)
    pm = manager.make_manager((("extras", extras),), entry_points=False)
    assert manager.build_registries(pm)["schedule"].plugin_of("polynomial") == "extras"


def test_spec_steps_cyclic_per_batch_unless_told(tmp_path):
    from bpcli.app.spec.schema import load_spec

    base = ["schedule.type=cyclic", "schedule.base_lr=1e-3", "schedule.max_lr=1e-2"]
    s = load_spec(SPIRALS, base)
    assert s.schedule["interval"] == "step" and s.schedule["step_size_up"] == 2000
    assert load_spec(SPIRALS, ["schedule.type=constant"]).schedule["interval"] == "epoch"
    s = load_spec(SPIRALS, [*base, "schedule.interval=epoch"])
    assert s.schedule["interval"] == "epoch"
    (tmp_path / "r.toml").write_text(s.to_toml())
    assert load_spec(tmp_path / "r.toml") == s


def _logged(out, kind: str) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == kind]


CYCLIC = ["--set", "schedule.type=cyclic", "--set", "schedule.base_lr=1e-3", "--set",
          "schedule.max_lr=2e-2", "--set", "schedule.step_size_up=10", "--set",
          "schedule.mode=triangular2", "--set", "train.log_every=1"]  # fmt: skip


def _cyclic_lrs(n: int) -> list[float]:
    opt = optim.Adam([bp.tensor(np.zeros(1), requires_grad=True)], lr=1e-2)
    sched = lrs.CyclicLR(opt, 1e-3, 2e-2, step_size_up=10, mode="triangular2")
    return [(opt.step(), sched.step(), opt.param_groups[0]["lr"])[2] for _ in range(n)]


def test_train_cyclic_logs_every_step_and_resumes_exactly(tmp_path):
    out, half = tmp_path / "run", tmp_path / "half"
    result = run("train", SPIRALS, "--epochs", "3", *CYCLIC, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    steps, epochs = _logged(out, "step"), _logged(out, "epoch")
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and len(steps) > 60
    assert [s["lr"] for s in steps] == _cyclic_lrs(len(steps))
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert 'interval = "step"' in (out / "spec.toml").read_text()
    assert run("train", SPIRALS, "--epochs", "1", *CYCLIC, "--out", half, "--quiet").exit_code == 0
    result = run("train", SPIRALS, "--epochs", "3", *CYCLIC, "--resume", half, "--quiet")
    assert result.exit_code == 0, result.output
    assert [s["lr"] for s in _logged(half, "step")] == [s["lr"] for s in steps]


def test_train_constant_logs_the_lr_per_epoch(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "schedule.type=constant", "--set", "schedule.factor=0.5", "--set",
            "schedule.total_iters=2"]  # fmt: skip
    result = run("train", SPIRALS, "--epochs", "4", *args, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert [e["lr"] for e in _logged(out, "epoch")] == [0.005, 0.005, 0.01, 0.01]


def test_train_bad_cyclic_option_is_one_line(tmp_path):
    bad = [*CYCLIC, "--set", "schedule.mode=triangle"]
    one_line_error(run("train", SPIRALS, *bad, "--out", tmp_path / "run"), "schedule", "mode")
