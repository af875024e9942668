"""The flag rules of gradient diagnostics: each flag says what is wrong, the numbers that show
it (evidence), and a fix drawn from the model itself (its activations, its weights' scale
against He/Xavier, its learning rate, the norms observed so far).

Thresholds are calibrated on the labelled corpus of bench/diagnostics (``make
diagnostics-corpus`` prints each one's margin): no healthy run there raises a flag, every broken
run raises its kind. A check point's flag is a candidate: the run-level ``verdict`` keeps the
exploding, saturation and update-ratio flags only where the loss suffered with them.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VANISH_ORDERS = 2.3  # first-layer gradient norm this many orders below the largest: vanishing
VANISH_LAYER_ORDERS = 2.0  # a layer this many orders below the largest is named
EXPLODE_GROWTH = 10.0  # total norm this many times the median of earlier check points
DEAD_FRAC = 0.6
SATURATED_FRAC = 0.5
RATIO_HEALTHY = 1e-3
RATIO_HIGH, RATIO_LOW = 1e-1, 1e-5
BN_VAR_COLLAPSE = 1e-4
HISTORY = 50  # check points the growth rule compares against
CONVERGED = 1e-2  # gradient norm relative to the first check point's
BPTT_BOUNDARY = 0.1  # boundary gradient vs the largest parameter gradient norm
INPUT_RMS = 50.0  # root mean square of the first weighted layer's input: not scaled

# Activation layers whose outputs are checked, by class name: what "unhealthy" means for each.
DEAD = ("ReLU",)
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardtanh": (-1.0, 1.0)}
NORMS = ("BatchNorm1d", "BatchNorm2d")
SATURATION_MARGIN = 0.01  # within 1% of the output range from a bound


@dataclass
class Flag:
    """One problem found at a check point."""

    kind: str  # inputs, vanishing, exploding, dead_units, saturation, update_ratio, batchnorm,
    # bptt
    severity: str  # "warn" or "error"
    layers: list[str]
    evidence: str
    suggestion: str
    set: list[str] = field(default_factory=list)  # the fix as --set overrides, where it is one


@dataclass
class ModelInfo:
    """What the rules need to know about the model, read once."""

    layers: list[tuple[str, Any]]  # (name, module) of modules owning a >= 2-d weight, in order
    activations: list[tuple[str, Any, str]]  # (name, module, class name)
    norms: list[tuple[str, Any]]
    before: dict[str, str]  # activation name -> the weighted layer feeding it
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model, context: dict[str, Any]) -> ModelInfo:
        layers, acts, norms, before, last = [], [], [], {}, ""
        for name, mod in model.named_modules():
            kind = type(mod).__name__
            w = mod._parameters.get("weight")
            if w is not None and w.ndim >= 2:
                layers.append((name, mod))
                last = name
            if kind in DEAD or kind in SATURATING:
                acts.append((name, mod, kind))
                before[name] = last
            if kind in NORMS:
                norms.append((name, mod))
        return cls(layers, acts, norms, before, context)

    def unit_axis(self, act_name: str) -> int:
        """Channels are axis 1 after a convolution; features the last axis otherwise."""
        mods = dict(self.layers)
        src = mods.get(self.before.get(act_name, ""))
        return 1 if src is not None and type(src).__name__.startswith("Conv") else -1

    def module(self, name: str):
        return dict(self.layers).get(name)

    def kinds(self) -> set[str]:
        return {k for _, _, k in self.activations}


class Recent:
    """What the rules compare a check point against: the first check point's total gradient
    norm, and over the last ``HISTORY`` check points the finite totals (kept sorted, for
    their median) and the learning rates.

    ``add`` keeps it up to date one check point at a time, so a check point at every step
    costs the rules a few list operations rather than a pass over the window.
    """

    def __init__(self):
        self.first: float | None = None
        self.window: deque = deque()  # (total or None if non-finite, lr) per check point
        self.totals: list[float] = []

    @classmethod
    def of(cls, history: list) -> Recent:
        recent = cls()
        for r in history[-HISTORY:]:
            recent.add(r)
        recent.first = history[0].grad_total if history else None
        return recent

    def add(self, report) -> None:
        self.add_total(report.grad_total, report.nonfinite, report.lr)

    def add_total(self, grad_total: float, nonfinite: bool, lr: float) -> None:
        """``add`` from the numbers alone (a record row needs no report object for this)."""
        if self.first is None:
            self.first = grad_total
        total = None if nonfinite else grad_total
        self.window.append((total, lr))
        if total is not None:
            insort(self.totals, total)
        if len(self.window) > HISTORY:
            old, _ = self.window.popleft()
            if old is not None:
                del self.totals[bisect_left(self.totals, old)]

    def median(self) -> float:
        return _median(self.totals)

    def peak_lr(self, lr: float) -> float:
        return max(max((x for _, x in self.window), default=lr), lr)


def check(report, history: list, info: ModelInfo, recent: Recent | None = None) -> list[Flag]:
    """Every flag the report raises, given the earlier check points of the run (``recent``:
    the same kept up to date by the caller, ``Recent.of(history)`` if not given)."""
    if recent is None:
        recent = Recent.of(history)
    if _calm(report, recent):
        return []
    flags = []
    for rule in (_inputs, _exploding, _vanishing, _dead, _saturated, _update_ratio, _batchnorm,
                 _bptt):  # fmt: skip
        flag = rule(report, recent, info, flags)
        if flag is not None:
            flags.append(flag)
    return flags


def _calm(report, recent: Recent) -> bool:
    """True only when no rule can fire: the usual check point of a healthy run, told in one
    pass over its numbers rather than seven rules (--diagnose=1 asks at every step). False
    when unsure; the rules then decide."""
    if report.nonfinite or report.norms or report.bptt:
        return False
    if report.input_rms is not None and report.input_rms > INPUT_RMS:
        return False
    if recent.totals and report.grad_total > EXPLODE_GROWTH * recent.totals[0]:
        return False  # the smallest recent total, not the median: safe side of _exploding
    for a in report.activations:
        if (a.dead is not None and a.dead >= DEAD_FRAC) or (
            a.saturated is not None and a.saturated >= SATURATED_FRAC
        ):
            return False
    norms, ratios = [], []
    for p in report.params:
        if len(p.shape) >= 2:
            if math.isfinite(p.grad_norm):
                norms.append(p.grad_norm)
            r = p.update_ratio
            if r is not None and math.isfinite(r):
                ratios.append(r)
    if len(norms) >= 3 and norms[0] < max(norms) * 10**-VANISH_ORDERS:
        return False
    # No layer vanished, so _update_ratio would judge all of them.
    return not ratios or report.lr <= 0 or RATIO_LOW <= _median(sorted(ratios)) <= RATIO_HIGH


# -- helpers --------------------------------------------------------------------------------
def _median(xs: list[float]) -> float:
    """statistics.median of a sorted list, without its per-call overhead."""
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def _g(x: float) -> str:
    return f"{x:.2g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.1e}"


def _round1(x: float) -> float:
    """One significant digit: a number to type, not a measurement."""
    if x <= 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(x))
    return round(x / 10**e) * 10**e


def _share(r: float) -> str:
    return f"{r:.3g}x" if r >= 1 else f"{100 * r:.0f}% of"


def _total(report) -> float:
    return report.grad_total


def _weights(report) -> list:
    return [p for p in report.params if len(p.shape) >= 2]


HE = 'model.init={type = "he_normal", nonlinearity = "relu"}'
HAND_DRAWN = ("normal", "uniform", "trunc_normal", "constant", "zeros", "ones")


def _custom_init(info: ModelInfo) -> bool:
    """The spec draws the weights at a scale of its own (not He/Xavier/LeCun/orthogonal)."""
    init = info.context.get("init")
    kind = init.get("type") if isinstance(init, dict) else init
    return kind in HAND_DRAWN


def _standard_init(info: ModelInfo) -> list[str]:
    """He for ReLU nets, Xavier for tanh/sigmoid ones: the scale that keeps signals steady."""
    saturating = any(k in SATURATING for _, _, k in info.activations)
    return ['model.init={type = "xavier_normal"}'] if saturating else [HE]


def _init_scale(info: ModelInfo, layer: str) -> str:
    """``0 weight std 0.10, He 0.18, Xavier 0.13`` for the layer's current weights."""
    mod = info.module(layer)
    if mod is None:
        return ""
    w = mod.weight.data
    fan_in = int(np.prod(w.shape[1:]))
    fan_out = int(w.shape[0] * np.prod(w.shape[2:]))
    he, xavier = math.sqrt(2.0 / fan_in), math.sqrt(2.0 / (fan_in + fan_out))
    return f"{layer}.weight std {_g(float(w.std()))} (He {_g(he)}, Xavier {_g(xavier)})"


def _spec_init(info: ModelInfo) -> str:
    init = info.context.get("init")
    if not init:
        return ""
    args = ", ".join(f"{k}={v}" for k, v in init.items() if k != "type")
    return f"model.init {init['type']}" + (f" ({args})" if args else "")


# -- rules ----------------------------------------------------------------------------------
def _inputs(report, recent, info, flags) -> Flag | None:
    rms = report.input_rms
    if rms is None or not rms > INPUT_RMS:
        return None
    first = info.layers[0][0] if info.layers else ""
    return Flag(
        "inputs",
        "warn",
        [first] if first else [],
        f"the inputs of {first or 'the first layer'} have a root mean square of {_g(rms)} "
        "(standardised data: about 1): its gradient and first steps are that many times too "
        "large",
        "standardise the inputs: data.standardize = true",
        ["data.standardize=true"],
    )


def _exploding(report, recent: Recent, info, flags) -> Flag | None:
    # The recent past is the reference (and keeps --diagnose=1 at O(1) per step).
    finite = recent.totals
    lr = report.lr
    if report.nonfinite:
        bad = next(p.name for p in report.params if not math.isfinite(p.grad_norm))
        ok = [p.grad_norm for p in report.params if math.isfinite(p.grad_norm)]
        clip = _median(finite) if finite else math.sqrt(sum(x * x for x in ok)) or 1.0
        seen = ""
        if finite:
            lo, hi = finite[0], finite[-1]
            seen = f"; total norm at earlier check points {_g(lo)}" + (
                f"..{_g(hi)}" if hi > lo else ""
            )
        return Flag(
            "exploding",
            "error",
            [bad],
            f"non-finite gradient at step {report.step}, first in {bad}{seen}",
            f"clip gradients: train.clip_grad_norm = {_round1(clip):g} (the typical norm seen), "
            f"and lower the learning rate: optimizer.lr = {_round1(lr / 10):g} (now {_g(lr)})",
            [f"optimizer.lr={_round1(lr / 10):g}"],
        )
    total = _total(report)
    if finite and total > EXPLODE_GROWTH * _median(finite):
        med = _median(finite)
        top = max(report.params, key=lambda p: p.grad_norm)
        return Flag(
            "exploding",
            "warn",
            [top.layer or top.name],
            f"total gradient norm {_g(total)} at step {report.step} is {total / med:.0f}x the "
            f"median {_g(med)} of the earlier check points; largest in {top.name} "
            f"({_g(top.grad_norm)})",
            f"clip gradients: train.clip_grad_norm = {_round1(med):g}; or lower the learning "
            f"rate: optimizer.lr = {_round1(lr / 10):g} (now {_g(lr)})",
            [f"optimizer.lr={_round1(lr / 10):g}"],
        )
    return None


def _vanishing(report, recent, info, flags) -> Flag | None:
    ws = [p for p in _weights(report) if math.isfinite(p.grad_norm)]
    if len(ws) < 3 or report.nonfinite:
        return None
    top = max(ws, key=lambda p: p.grad_norm)
    if top.grad_norm <= 0 or ws[0].grad_norm >= top.grad_norm * 10**-VANISH_ORDERS:
        return None
    low = []
    for p in ws:  # the leading run of layers far below the largest
        if p.grad_norm >= top.grad_norm * 10**-VANISH_LAYER_ORDERS:
            break
        low.append(p)
    orders = math.log10(top.grad_norm / max(ws[0].grad_norm, 1e-45))
    layers = [p.layer or p.name for p in low]
    evidence = (
        f"gradient norm {_g(ws[0].grad_norm)} at {ws[0].name} vs {_g(top.grad_norm)} at "
        f"{top.name}: {orders:.1f} orders of magnitude; {len(low)} layer(s) below 1% of it"
    )
    kinds = info.kinds()
    sat = sorted(k for k in kinds if k in ("Sigmoid", "Tanh", "Hardtanh"))
    cause = []
    if sat:
        n = sum(1 for _, _, k in info.activations if k in sat)
        cause.append(
            f"{n} {'/'.join(k.lower() for k in sat)} layers (each derivative <= "
            f"{'0.25' if sat == ['Sigmoid'] else '1'}) shrink the signal going back"
        )
    scale = _init_scale(info, low[0].layer) if low else ""
    if scale:
        cause.append(scale + (f" from {_spec_init(info)}" if _spec_init(info) else ""))
    if sat:
        fix = (
            'use ReLU with He initialisation: {type = "relu"} layers and model.init = '
            '{type = "he_normal", nonlinearity = "relu"} (see models/deep-relu-he.toml)'
        )
    elif "ReLU" in kinds:
        fix = (
            'use He initialisation: model.init = {type = "he_normal", nonlinearity = '
            '"relu"}; or add batch_norm1d/residual connections'
        )
    else:
        fix = "add normalisation (batch_norm1d, layer_norm) or residual connections"
    # as --set lines: the saturating layers of the top-level list become ReLU, with He init
    sets = [f"model.layers.{n}.type=relu" for n, _, k in info.activations
            if k in ("Sigmoid", "Tanh", "Hardtanh") and n.isdigit()]  # fmt: skip
    sets = [*sets, HE] if sets or "ReLU" in kinds else []
    return Flag(
        "vanishing",
        "warn",
        layers,
        evidence + ("; cause: " + "; ".join(cause) if cause else ""),
        fix,
        sets,
    )


def _dead(report, recent, info, flags) -> Flag | None:
    bad = [a for a in report.activations if a.dead is not None and a.dead >= DEAD_FRAC]
    if not bad:
        return None
    evidence = "units at 0 for the whole batch: " + ", ".join(
        f"{a.name} {100 * a.dead:.0f}% of {a.units}" for a in bad
    )
    fix, sets = [], []
    for a in bad:
        src = info.module(info.before.get(a.name, ""))
        bias = getattr(src, "bias", None) if src is not None else None
        if bias is not None and bias.data.size and float(bias.data.mean()) < 0:
            evidence += (
                f"; the bias of {info.before[a.name]} feeding {a.name} averages "
                f"{_g(float(bias.data.mean()))}, pushing pre-activations below 0"
            )
            fix.append('start the biases at zero: model.bias_init = "zeros"')
            sets = ["model.bias_init=zeros"]
            break
    lr = report.lr
    fix.append(
        f'use {{type = "leaky_relu"}} instead of relu, He init (model.init = {{type = '
        f'"he_normal", nonlinearity = "relu"}}), or a lower learning rate: optimizer.lr = '
        f"{_round1(lr / 10):g} (now {_g(lr)})"
    )
    sets = sets or [f"optimizer.lr={_round1(lr / 10):g}"]
    return Flag("dead_units", "warn", [a.name for a in bad], evidence, "; ".join(fix), sets)


def _saturated(report, recent, info, flags) -> Flag | None:
    bad = [
        a for a in report.activations if a.saturated is not None and a.saturated >= SATURATED_FRAC
    ]
    if not bad:
        return None
    evidence = (
        ", ".join(f"{a.name} ({a.type.lower()}) {100 * a.saturated:.0f}%" for a in bad)
        + " of the outputs within 1% of a bound over the batch"
    )
    scale = _init_scale(info, info.before.get(bad[0].name, ""))
    if scale:
        evidence += f"; {scale}"
    fix = (
        'initialise with Xavier (model.init = {type = "xavier_normal"}), put batch_norm1d '
        'before the activation, or use {type = "relu"} with He init'
    )
    # Xavier scale fixes a tanh net; a deep sigmoid net vanishes at Xavier's scale too
    # (corpus: sigmoid-xavier), so it gets ReLU and He like a vanishing one.
    sig = [n for n, _, k in info.activations if k == "Sigmoid" and n.isdigit()]
    sets = ([f"model.layers.{n}.type=relu" for n in sig] + [HE] if sig
            else ['model.init={type = "xavier_normal"}'])  # fmt: skip
    return Flag("saturation", "warn", [a.name for a in bad], evidence, fix, sets)


def _update_ratio(report, recent: Recent, info, flags) -> Flag | None:
    if report.nonfinite:
        return None
    # Layers that vanish are their own problem; the learning rate is judged on the others.
    vanished = {n for f in flags if f.kind == "vanishing" for n in f.layers}
    ws = [
        p
        for p in _weights(report)
        if p.update_ratio is not None and p.layer not in vanished and math.isfinite(p.update_ratio)
    ]
    if not ws:
        return None
    ratio = _median(sorted(p.update_ratio for p in ws))
    lr = report.lr
    if lr <= 0:
        return None
    suggest = _round1(lr * RATIO_HEALTHY / ratio) if ratio > 0 else lr * 10
    names = [p.name for p in ws]
    if ratio > RATIO_HIGH:
        return Flag(
            "update_ratio",
            "warn",
            names,
            f"median update/weight ratio {_g(ratio)} (healthy near 1e-3): each step "
            f"moves the weights by {_share(ratio)} their norm",
            f"lower the learning rate: optimizer.lr = {suggest:g} (now {_g(lr)})",
            [f"optimizer.lr={suggest:g}"],
        )
    # Small steps are meant when a schedule has decayed the learning rate, or when the model
    # has converged (gradients 100x below the first check point's): judge only neither.
    first = _total(report) if recent.first is None else recent.first
    if (
        0 < ratio < RATIO_LOW
        and lr >= 0.5 * recent.peak_lr(lr)
        and _total(report) >= CONVERGED * first
    ):
        # a step towards the healthy ratio, but no more than 1000x at once (measured on the
        # corpus: 10x left the learning-rate runs stalled)
        suggest = min(suggest, _round1(1000 * lr))
        return Flag(
            "update_ratio",
            "warn",
            names,
            f"median update/weight ratio {_g(ratio)} (healthy near 1e-3): the weights hardly move",
            f"raise the learning rate: optimizer.lr = {suggest:g} (now {_g(lr)})"
            + (
                f"; or, as the weights were drawn by hand ({_spec_init(info)}), start them at "
                "their standard scale"
                if _custom_init(info)
                else ""
            ),
            _standard_init(info) if _custom_init(info) else [f"optimizer.lr={suggest:g}"],
        )
    return None


def _batchnorm(report, recent, info, flags) -> Flag | None:
    bad = [n for n in report.norms if n.collapsed >= 0.5]
    if not bad:
        return None
    evidence = ", ".join(
        f"{n.name} running variance min {_g(n.var_min)}, median "
        f"{_g(n.var_median)} ({100 * n.collapsed:.0f}% of channels < "
        f"{BN_VAR_COLLAPSE:g})"
        for n in bad
    )
    fix = (
        "the layer before the BatchNorm outputs near-constant channels (dead ReLUs, "
        "collapsed weights): check its dead units, lower the learning rate or weight decay"
    )
    return Flag(
        "batchnorm",
        "warn",
        [n.name for n in bad],
        evidence,
        fix,
        ['model.init={type = "he_normal", nonlinearity = "relu"}'],
    )


def _bptt(report, recent, info, flags) -> Flag | None:
    b = report.bptt
    if not b or report.nonfinite:
        return None
    top = max((p.grad_norm for p in report.params), default=0.0)
    g = b.get("boundary_grad_norm") or 0.0
    if top <= 0 or g < BPTT_BOUNDARY * top:
        return None
    window = b.get("window")
    return Flag(
        "bptt",
        "warn",
        [],
        f"gradient reaching the start of the {window}-step window is {_g(g)} "
        f"({100 * g / top:.0f}% of the largest parameter gradient): truncated BPTT cuts "
        "dependencies the model is still learning from",
        f"a longer window: train.bptt = {2 * window if window else 128}",
        [f"train.bptt={2 * window if window else 128}"],
    )
