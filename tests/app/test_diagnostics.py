"""Gradient diagnostics: statistics, flags with evidence and fixes, the acceptance story of
models/deep-sigmoid.toml vs models/deep-relu-he.toml, metrics.jsonl lines."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from bpcli.app.diagnostics.collect import Diagnostics, DiagReport, load_run, parse_every
from bpcli.app.spec.schema import load_spec
from bpcli.app.store import runs
from bpcli.app.training.loop import Reporter, train
from bpcli.engine import random as bprandom
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn.layers.activation import ReLU, Sigmoid
from bpcli.nn.layers.container import Sequential
from bpcli.nn.layers.linear import Linear


class Collect(Reporter):
    def __init__(self):
        self.reports: list[DiagReport] = []

    def on_diagnostics(self, epoch, step, report):
        self.reports.append(report)


def run(tmp_path, spec_file, *overrides, diagnose="epoch", epochs=1):
    spec = load_spec(spec_file, overrides=[f"train.epochs={epochs}", *overrides])
    rep = Collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = train(spec, out_dir=tmp_path / "run", reporter=rep, diagnose=diagnose)
    return result, rep.reports


def kinds(reports):
    return {f.kind for r in reports for f in r.flags}


def test_deep_sigmoid_vanishes_at_its_first_layers_and_is_told_relu_he(tmp_path):
    _, reports = run(tmp_path, "models/deep-sigmoid.toml")
    assert [r.step for r in reports] == [1, 40]  # first step, end of epoch 1
    for r in reports:
        (flag,) = [f for f in r.flags if f.kind == "vanishing"]
        assert flag.layers[:3] == ["0", "2", "4"] and "18" not in flag.layers
        assert "0.weight" in flag.evidence and "orders of magnitude" in flag.evidence
        assert "sigmoid" in flag.evidence and "He" in flag.evidence
        assert "relu" in flag.suggestion and "he_normal" in flag.suggestion
    # the numbers behind it: norms grow by orders of magnitude from the first layer to the last
    norms = [p.grad_norm for p in reports[0].params if p.name.endswith("weight")]
    assert norms[-1] / norms[0] > 1e5


def test_deep_relu_he_raises_nothing(tmp_path):
    _, reports = run(tmp_path, "models/deep-relu-he.toml", epochs=2)
    assert len(reports) == 3 and kinds(reports) == set()


def test_healthy_default_mlp_digits_raises_nothing(tmp_path):
    result, reports = run(tmp_path, "models/mlp-digits.toml", epochs=40)
    assert result.ok and len(reports) == 41 and kinds(reports) == set()
    p = reports[0].params[0]
    assert p.grad_norm > 0 and p.weight_norm > 0 and 0 < p.update_ratio < 1
    assert math.isclose(p.grad_max, max(p.grad_max, abs(p.grad_mean)))
    (act,) = reports[0].activations
    assert act.type == "ReLU" and act.units == 256 and 0 <= act.dead < 0.5


def test_lr_10_explodes_with_a_clip_value(tmp_path):
    _, reports = run(tmp_path, "models/mlp-digits.toml", "optimizer.lr=10.0", epochs=1)
    (flag,) = [f for r in reports for f in r.flags if f.kind == "exploding"]
    assert "median" in flag.evidence
    clip = float(flag.suggestion.split("train.clip_grad_norm = ")[1].split(";")[0])
    first = math.sqrt(sum(p.grad_norm**2 for p in reports[0].params))
    assert 0.5 * first < clip < 2 * first  # read from the norms seen, not a constant
    assert "optimizer.lr = 1" in flag.suggestion
    assert "update_ratio" in kinds(reports)


def test_non_finite_step_is_diagnosed_before_the_run_stops(tmp_path):
    result, reports = run(tmp_path, "models/deep-relu-he.toml", "optimizer.lr=10.0")
    assert result.stopped_reason == "non-finite"
    last = reports[-1]
    assert last.nonfinite and last.flags[0].kind == "exploding"
    assert last.flags[0].severity == "error" and "clip_grad_norm" in last.flags[0].suggestion
    lines = runs.read_metrics(tmp_path / "run" / runs.METRICS_FILE)
    assert lines[-1]["kind"] == "diag" and lines[-1]["nonfinite"] is True


def test_negative_bias_init_kills_relus(tmp_path):
    bias = 'model.bias_init={type = "constant", val = -3.0}'
    _, reports = run(tmp_path, "models/deep-relu-he.toml", bias)
    flag = next(f for f in reports[0].flags if f.kind == "dead_units")
    assert "1" in flag.layers and "for the whole batch" in flag.evidence
    assert "averages -3" in flag.evidence
    assert "leaky_relu" in flag.suggestion and 'bias_init = "zeros"' in flag.suggestion


def _close(a, b) -> bool:
    """Equal JSON values, numbers to 9 significant digits."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float | int) and not isinstance(a, bool):
        return a == pytest.approx(b, rel=1e-8)
    return a == b


def test_every_n_steps_and_metrics_jsonl(tmp_path):
    _, reports = run(tmp_path, "models/deep-relu-he.toml", diagnose=7)
    steps = [r.step for r in reports]
    assert steps == [1, 7, 14, 21, 28, 35, 40]
    lines = [r for r in runs.read_metrics(tmp_path / "run" / runs.METRICS_FILE)
             if r["kind"] == "diag"]  # fmt: skip
    assert [r["step"] for r in lines] == steps
    text = (tmp_path / "run" / runs.METRICS_FILE).read_text().splitlines()
    # The lines carry 9 significant digits (diagnostics.record.FLOAT), the reports full floats.
    written = [json.loads(x) for x in text if x.startswith('{"kind": "diag"')]
    assert _close(written, [r.to_dict() for r in reports])
    back = DiagReport.from_dict(lines[1])
    assert back.params[0].grad_norm == pytest.approx(reports[1].params[0].grad_norm)
    whole = load_run(tmp_path / "run")
    assert len(whole.series()["0.weight"]) == len(steps) and whole.timeline == []


def test_calm_reports_read_like_the_reports_they_stand_for(tmp_path):
    from dataclasses import fields

    from bpcli.app.diagnostics.record import CalmReport

    _, reports = run(tmp_path, "models/deep-relu-he.toml", diagnose=3)
    calm = [r for r in reports if isinstance(r, CalmReport)]
    assert len(calm) > 5
    for r in calm:
        norms, d = r.layer_norms(), r.to_dict()  # written from the row, before any list is read
        full = DiagReport(**{f.name: getattr(r, f.name) for f in fields(DiagReport)})
        assert json.dumps(d) == full.to_json() and norms == full.layer_norms()
        assert r == full and full == r and r.to_dict() == d
        assert DiagReport.from_dict(d) == r


def test_diagnostics_off_changes_nothing(tmp_path):
    spec = load_spec("models/deep-relu-he.toml", overrides=["train.epochs=1"])
    a = train(spec, out_dir=tmp_path / "a", diagnose=None)
    b = train(spec, out_dir=tmp_path / "b", diagnose=1)
    assert a.metrics == b.metrics  # diagnostics observe, never change the run
    assert all(r["kind"] != "diag" for r in runs.read_metrics(tmp_path / "a" / "metrics.jsonl"))


def test_saturation_and_unit_stats():
    model = Sequential(Linear(4, 8), Sigmoid(), Linear(8, 3), ReLU())
    for p in model.parameters():
        p.data[...] = 0
    model[0].bias.data[:6] = 50.0  # 6 of 8 units pinned at 1
    model[2].bias.data[:] = -1.0  # every ReLU unit dead

    class Opt:
        param_groups = [{"lr": 0.1}]

    d = Diagnostics(model, Opt())
    d.begin()
    out = model(Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)))
    out.sum().backward()
    d.after_backward(1, 1)
    d.after_step()
    (r,) = d.flush()
    sat, dead = r.activations
    assert (sat.type, sat.units, sat.saturated, sat.source) == ("Sigmoid", 8, 0.75, "0")
    assert (dead.type, dead.dead, dead.source) == ("ReLU", 1.0, "2")
    assert {"saturation", "dead_units"} <= {f.kind for f in r.flags}
    assert model[1]._hooks is None  # hooks are gone after the check point


def test_parse_every_and_missing_run(tmp_path):
    assert parse_every("epoch") is None and parse_every(5) == 5
    with pytest.raises(BpcliError, match="not a run directory"):
        load_run(tmp_path)
    (tmp_path / runs.METRICS_FILE).write_text('{"kind": "epoch", "step": 1}\n')
    with pytest.raises(BpcliError, match="--diagnose"):
        load_run(tmp_path)


def test_module_forward_hook_sees_and_may_replace_the_output():
    relu = ReLU()
    seen = []
    remove = relu.register_forward_hook(lambda m, args, out: seen.append((m, args[0], out)))
    x = Tensor(np.array([-1.0, 2.0], np.float32))
    y = relu(x)
    assert seen[0][0] is relu and seen[0][1] is x and seen[0][2] is y
    remove2 = relu.register_forward_hook(lambda m, args, out: out * 2)
    np.testing.assert_array_equal(relu(x).data, [0.0, 4.0])
    remove()
    remove2()
    assert relu._hooks is None and len(seen) == 2
    relu(x)
    assert len(seen) == 2


def _check_point(model, x, zero_weight=None):
    class Opt:
        param_groups = [{"lr": 0.1}]

    lines = []
    d = Diagnostics(model, Opt(), sink=lambda ls, rs: lines.extend(_check_point_lines(ls)))
    d.begin()
    out = model(Tensor(x))
    (out * out).sum().backward()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    d.after_backward(1, 1)
    for p in model.parameters():  # a step of plain SGD
        p.data -= 0.1 * p.grad
    d.after_step()
    (fast,) = d.record.lines(d.record.derive())  # the template's line (None: it cannot)
    (r,) = d.flush()
    (line,) = lines
    return r, before, grads, line, fast


def test_every_step_measures_each_update_at_the_next_check_point():
    # every=1 defers the update of a check point to the next one's pass over the weights
    class Opt:
        param_groups = [{"lr": 0.1}]

    x = Tensor(np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32))
    ratios, hooked = {}, {}
    for every in (None, 1):
        bprandom.manual_seed(3)
        model = Sequential(Linear(6, 9), ReLU(), Linear(9, 4))
        d = Diagnostics(model, Opt(), every)
        for step in range(1, 4):
            d.begin()
            model.zero_grad()
            (model(x) ** 2).sum().backward()
            d.after_backward(1, step)
            for p in model.parameters():
                p.data -= 0.1 * p.grad
            d.after_step()
        hooked[every] = model[1]._hooks is not None
        reports = d.flush()
        ratios[every] = [[p.update_ratio for p in r.params] for r in reports]
        assert model[1]._hooks is None  # the kept hooks come off at the flush
    assert None not in ratios[1][2]
    np.testing.assert_allclose(np.array(ratios[1], float), np.array(ratios[None], float),
                               rtol=1e-12)  # fmt: skip
    assert hooked == {None: False, 1: True}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistics_match_numpy_and_the_json_line_matches_json_dumps(dtype):
    model = Sequential(Linear(6, 9), ReLU(), Linear(9, 4), Sigmoid())
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    model[0].bias.data[:3] = -50.0  # 3 of 9 ReLU units dead
    model[2].bias.data[:] = 0.0  # a zero weight norm: no update ratio
    x = np.random.default_rng(0).normal(size=(7, 6)).astype(dtype)
    r, before, grads, line, fast = _check_point(model, x)
    for p in r.params:
        g, w0 = grads[p.name].astype(np.float64), before[p.name].astype(np.float64)
        w1 = dict(model.named_parameters())[p.name].data.astype(np.float64)
        want = [np.linalg.norm(g), g.mean(), g.std(), np.abs(g).max(), (g == 0).mean(),
                np.linalg.norm(w0)]  # fmt: skip
        got = [p.grad_norm, p.grad_mean, p.grad_std, p.grad_max, p.zero_frac, p.weight_norm]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
        ratio = np.linalg.norm(w1 - w0) / np.linalg.norm(w0) if np.linalg.norm(w0) else None
        assert p.update_ratio == (None if ratio is None else pytest.approx(ratio, rel=1e-5))
        assert all(type(v) is float for v in got)
    relu, sig = r.activations
    assert relu.dead == pytest.approx(3 / 9) and sig.saturated == 0.0
    h = x.astype(np.float64) @ before["0.weight"].T.astype(np.float64) + before["0.bias"]
    assert relu.mean == pytest.approx(float(np.maximum(h, 0).mean()), rel=1e-5)
    assert r.params[3].update_ratio is None
    assert line == json.dumps(r.to_dict())
    # from the record, as json would write it but with 9 significant digits (documented)
    assert _close(json.loads(fast), {**r.to_dict(), "flags": []})
    assert list(json.loads(fast)) == list(r.to_dict())
    assert DiagReport.from_dict(json.loads(line)).params == r.params


def test_json_line_of_a_non_finite_check_point():
    model = Sequential(Linear(3, 2), ReLU())
    x = np.array([[1.0, np.inf, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r, _, _, line, fast = _check_point(model, x)
    assert fast is None  # a non-finite row takes json.dumps
    assert r.nonfinite and line == json.dumps(r.to_dict())
    assert "Infinity" not in line and "NaN" not in line


def test_recent_window_matches_the_history_it_summarises():
    import statistics
    from types import SimpleNamespace

    from bpcli.app.diagnostics import rules

    rng = np.random.default_rng(0)
    history, recent = [], rules.Recent()
    for _ in range(3 * rules.HISTORY):
        total = float(rng.choice([rng.lognormal(), 1.0, math.inf]))  # ties and non-finite ones
        lr = float(rng.uniform(0, 1))
        history.append(SimpleNamespace(grad_total=total, nonfinite=not math.isfinite(total), lr=lr))
        recent.add(history[-1])
        want = rules.Recent.of(history)
        finite = [r.grad_total for r in history[-rules.HISTORY :] if not r.nonfinite]
        assert recent.totals == sorted(finite) == want.totals
        assert recent.first == history[0].grad_total
        if finite:
            assert recent.median() == statistics.median(finite)
        peak = max([r.lr for r in history[-rules.HISTORY :]] + [0.5])
        assert recent.peak_lr(0.5) == peak == want.peak_lr(0.5)


def test_gradients_of_another_dtype_or_missing_take_the_per_parameter_path():
    class Opt:
        param_groups = [{"lr": 0.1}]

    model = Sequential(Linear(3, 2), Linear(2, 2))
    d = Diagnostics(model, Opt())
    g = np.array([[0.0, -3.0, 1.0], [2.0, 0.0, 0.0]])  # float64 for a float32 weight
    model[0].weight.grad = g
    d.after_backward(1, 1)
    d.after_step()
    (r,) = d.flush()
    w, missing = r.params[0], r.params[1]
    assert w.grad_norm == pytest.approx(math.sqrt(14)) and w.grad_max == 3.0
    assert w.zero_frac == 0.5 and w.update_ratio == 0.0
    assert missing.name == "0.bias" and (missing.grad_norm, missing.zero_frac) == (0.0, 1.0)
    assert missing.weight_norm == pytest.approx(float(np.linalg.norm(model[0].bias.data)))
    assert r.grad_total == pytest.approx(math.sqrt(14))


def test_the_calm_shortcut_never_hides_a_flag():
    from bpcli.app.diagnostics import rules
    from bpcli.app.diagnostics.collect import ActStats, ParamStats

    rng = np.random.default_rng(0)
    info = rules.ModelInfo([], [], [], {}, {})
    every = (rules._exploding, rules._vanishing, rules._dead, rules._saturated,
             rules._update_ratio, rules._batchnorm, rules._bptt)  # fmt: skip
    calm = 0
    for _ in range(3000):
        n_w = int(rng.integers(1, 5))
        params = []
        for i in range(n_w):
            for shape in ([4, 3], [4]):
                norm = float(10 ** rng.uniform(-6, 1)) if rng.random() > 0.05 else 0.0
                ratio = None if rng.random() < 0.1 else float(10 ** rng.uniform(-6.5, 0.5))
                params.append(ParamStats(f"{i}.w{len(shape)}", str(i), shape, norm, 0.0, 0.0,
                                         0.0, 0.0, 1.0, ratio))  # fmt: skip
        acts = [ActStats("a", "ReLU", 8, dead=float(rng.choice([0.0, 0.49, 0.5, 0.9])))]
        r = DiagReport(1, 1, float(rng.choice([0.0, 1e-3, 0.1])), params, acts)
        r.grad_total = math.sqrt(sum(p.grad_norm**2 for p in params))
        recent = rules.Recent()
        for _ in range(int(rng.integers(0, 5))):
            total = r.grad_total * float(10 ** rng.uniform(-2, 0.5))
            recent.add(DiagReport(1, 1, float(rng.choice([1e-3, 1.0])), grad_total=total))
        flags = []
        for rule in every:
            flag = rule(r, recent, info, flags)
            if flag is not None:
                flags.append(flag)
        if rules._calm(r, recent):
            calm += 1
            assert flags == [], flags
        assert rules.check(r, [], info, recent) == flags
    assert 300 < calm < 2700  # both paths were taken


def test_the_vectorised_calm_rows_raise_no_flag():
    from bpcli.app.diagnostics import rules

    class Opt:
        param_groups = [{"lr": 0.1}]

    model = Sequential(Linear(4, 8), ReLU(), Linear(8, 8), Sigmoid(), Linear(8, 3), ReLU())
    d = Diagnostics(model, Opt())
    rec, rng = d.record, np.random.default_rng(0)
    every = (rules._exploding, rules._vanishing, rules._dead, rules._saturated,
             rules._update_ratio, rules._batchnorm, rules._bptt)  # fmt: skip
    calm_rows = 0
    for _ in range(40):
        rec.data[:] = np.nan
        n = rec.data.shape[0]
        size = np.array([32.0, 8.0, 64.0, 8.0, 24.0, 3.0])
        ss = 10 ** rng.uniform(-9, 1, (n, 6))
        ss[rng.random((n, 6)) < 0.01] = np.inf
        wsq = 10 ** rng.uniform(-2, 1, (n, 6))
        dsq = wsq * 10 ** rng.uniform(-13, 0.5, (n, 6))
        rec.params[:] = np.stack([np.zeros((n, 6)), ss, np.sqrt(ss), np.zeros((n, 6)), wsq,
                                  np.broadcast_to(size, (n, 6)), dsq], axis=-1)  # fmt: skip
        units = np.array([8.0, 8.0, 3.0])
        active = units * rng.choice([1.0, 0.6, 0.5, 0.4, 0.0], (n, 3))
        rec.acts[:] = np.stack([active, np.ones((n, 3)), np.broadcast_to(units, (n, 3)),
                                np.full((n, 3), 40.0)], axis=-1)  # fmt: skip
        stepped = (rng.random(n) < 0.9) * 1.0
        rec.head[:] = np.stack([np.ones(n), np.arange(1.0, n + 1), rng.choice([0.0, 0.1], n),
                                stepped, np.full(n, np.nan), np.full(n, np.nan)],
                               axis=1)  # fmt: skip
        rec.n = n
        derived = rec.derive()
        lists = rec.lists(derived)
        for i, calm in enumerate(rec.calm(derived).tolist()):
            r = rec.report(i, lists)
            flags = []
            for rule in every:  # no earlier check points: exploding fires only if non-finite
                flag = rule(r, rules.Recent(), d.model_info, flags)
                if flag is not None:
                    flags.append(flag)
            if calm:
                calm_rows += 1
                assert flags == [], (i, flags)
    assert 100 < calm_rows < 40 * rec.data.shape[0] - 100  # both kinds of rows were drawn


def _sgd_check_point(model, x, sink=None, lr=0.1):
    """One check point by hand: forward, backward, an SGD step; the flushed report."""

    class Opt:
        param_groups = [{"lr": lr}]

    d = Diagnostics(model, Opt(), sink=sink)
    d.begin()
    (model(x) ** 2).sum().backward()
    d.after_backward(1, 1)
    for p in model.parameters():
        p.data -= lr * p.grad
    d.after_step()
    (r,) = d.flush()
    return r


def test_batchnorm_whose_running_variance_collapsed_is_flagged():
    from bpcli.nn.layers.norm import BatchNorm1d

    bprandom.manual_seed(0)
    x = Tensor(np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32))
    reports, lines = {}, []
    for collapsed in (False, True):
        model = Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Linear(8, 3))
        if collapsed:  # 6 of 8 channels constant: their batch variance 0, the running one ~0
            model[0].weight.data[:6] = 0
            model[1].running_var.data[:6] = 1e-6
        sink = (lambda ls, rs: lines.extend(_check_point_lines(ls))) if collapsed else None
        reports[collapsed] = _sgd_check_point(model, x, sink)
    (healthy,) = reports[False].norms
    assert (healthy.name, healthy.type, healthy.collapsed, healthy.gamma_min) == (
        "1", "BatchNorm1d", 0.0, 1.0)  # fmt: skip
    assert "batchnorm" not in kinds([reports[False]])
    r = reports[True]
    (bn,) = r.norms
    assert bn.collapsed == 0.75 and bn.var_min == pytest.approx(0.9e-6, rel=1e-5)
    assert bn.var_median == bn.var_min  # 6 of 8 channels: the median is a collapsed one
    (flag,) = [f for f in r.flags if f.kind == "batchnorm"]
    assert flag.layers == ["1"] and "75% of channels < 0.0001" in flag.evidence
    assert "dead units" in flag.suggestion
    (line,) = lines  # the metrics.jsonl line carries the norms and the flag
    d = json.loads(line)
    assert d["norms"][0]["collapsed"] == 0.75 and "batchnorm" in {f["kind"] for f in d["flags"]}
    assert DiagReport.from_dict(d).norms == r.norms


def test_boundary_gradient_norm_of_a_carried_state():
    # d loss/d h = 2, d loss/d c = 3 at the truncation boundary: the norm of both together
    class Opt:
        param_groups = [{"lr": 0.1}]

    model = Sequential(Linear(3, 4))
    d = Diagnostics(model, Opt(), context={"bptt": 8})
    h, c = np.ones((2, 4), np.float32), np.ones((2, 4), np.float32)
    d.begin()
    th, tc = d.track_state((Tensor(h), Tensor(c)))
    x = Tensor(np.ones((2, 3), np.float32))
    (model(x).sum() + (th * 2).sum() + (tc * 3).sum()).backward()
    d.after_backward(1, 5)
    d.after_step()
    (r,) = d.flush()
    assert r.bptt == {"window": 8, "boundary_grad_norm": pytest.approx(math.sqrt(8 * 4 + 8 * 9))}
    assert d.track_state(None) is None


def test_bptt_rule_fires_when_the_boundary_gradient_is_a_tenth_of_the_largest():
    from bpcli.app.diagnostics import rules
    from bpcli.app.diagnostics.collect import ParamStats

    info = rules.ModelInfo([], [], [], {}, {})

    def flags(boundary, window=64):
        p = ParamStats("rnn.weight", "rnn", [4, 4], 2.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1e-3)
        r = DiagReport(1, 9, 1e-3, [p], bptt={"window": window, "boundary_grad_norm": boundary})
        return [f for f in rules.check(r, [], info) if f.kind == "bptt"]

    assert flags(0.19) == [] and flags(0.0) == []
    (f,) = flags(0.2)  # 10% of the largest parameter gradient norm (2.0)
    assert "64-step window is 0.2 (10% of" in f.evidence
    assert f.suggestion == "a longer window: train.bptt = 128" and f.severity == "warn"
    assert flags(1.0, window=16)[0].suggestion.endswith("train.bptt = 32")


def test_char_rnn_run_records_the_boundary_gradient_at_its_check_points(tmp_path):
    from bpcli.app.diagnostics import rules
    from bpcli.app.spec.schema import resolve

    raw = {
        "name": "tiny-lm", "seed": 0,
        "data": {"dataset": "austen", "val": 0.1, "limit": 3000},
        "model": {"layers": [{"type": "char_rnn", "embed_dim": 8, "hidden_size": 16}]},
        "optimizer": {"type": "adam", "lr": 1e-2},
        "train": {"epochs": 2, "batch_size": 4, "bptt": 16},
    }  # fmt: skip
    rep = Collect()
    train(resolve(raw), out_dir=tmp_path / "lm", reporter=rep, diagnose="epoch")
    first, *ends = rep.reports
    assert first.step == 1 and first.bptt is None  # no state carried into the first window
    assert len(ends) == 2
    for r in ends:  # the epochs' last windows start from a carried state
        g = r.bptt["boundary_grad_norm"]
        assert r.bptt["window"] == 16 and math.isfinite(g) and g > 0
        top = max(p.grad_norm for p in r.params)
        assert ("bptt" in kinds([r])) == (g >= rules.BPTT_BOUNDARY * top)
    logged = load_run(tmp_path / "lm").reports
    assert [r.bptt for r in logged] == [r.bptt for r in rep.reports]


def test_json_reporter_carries_the_metrics_jsonl_lines(tmp_path, capsys):
    from bpcli.cli.render_train import JsonReporter

    spec = load_spec("models/mlp-digits.toml", overrides=["train.epochs=1"])
    train(spec, out_dir=tmp_path / "r", reporter=JsonReporter(), diagnose=10)
    epoch, final = map(json.loads, capsys.readouterr().out.splitlines())
    logged = [r for r in runs.read_metrics(tmp_path / "r" / runs.METRICS_FILE)
              if r.get("kind") == "diag"]  # fmt: skip
    assert [d["step"] for d in epoch["diagnostics"]] == [1, 10, 20, 30, 40]
    assert epoch["diagnostics"] == logged and "diagnostics" not in final
    assert epoch["epoch"] == 1 and "val_loss" in epoch


def _check_point_lines(lines):
    """The sink's lines less the run's layer names (written once, before the first)."""
    return [ln for ln in lines if not ln.startswith('{"kind": "diag_layers"')]
