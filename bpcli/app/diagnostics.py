"""Gradient diagnostics: per-parameter gradient statistics, update/weight ratios and activation
health, taken at check points of a training run, with flags that say what is wrong and how to
fix it (the rules are in ``diagnostics_flags``).

A check point is one training step seen in full: the activations of its forward (forward hooks
on the activation layers, installed for that step only), its gradients before clipping, and
the step the optimizer took (a copy of the weights before ``optimizer.step``). Steps that are
not check points run exactly as without diagnostics: nothing is installed, nothing copied.

``Diagnostics.wants(step, last_of_epoch)`` says which steps are check points: the first step
of the run (a baseline reading before training has changed anything), the last step of every
epoch, and with ``every=N`` every N-th step. Each check point gives a ``DiagReport``, whose
``to_dict()`` is the ``{"kind": "diag", ...}`` line of ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcli.app import diagnostics_flags as rules
from bpcli.engine.tensor import Tensor

# Activation layers whose outputs are checked, by class name: what "unhealthy" means for each.
DEAD = ("ReLU",)
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardtanh": (-1.0, 1.0)}
NORMS = ("BatchNorm1d", "BatchNorm2d")
SATURATION_MARGIN = 0.01  # within 1% of the output range from a bound


@dataclass
class ParamStats:
    """One parameter tensor at one check point (gradient before clipping)."""

    name: str
    layer: str
    shape: list[int]
    grad_norm: float
    grad_mean: float
    grad_std: float
    grad_max: float
    zero_frac: float
    weight_norm: float
    update_ratio: float | None = None  # ||w_after - w_before|| / ||w_before||


@dataclass
class ActStats:
    """One activation layer's output on the check point's batch."""

    name: str
    type: str
    units: int
    dead: float | None = None  # ReLU: fraction of units at zero for the whole batch
    saturated: float | None = None  # sigmoid/tanh: units within 1% of a bound for the batch
    mean: float = 0.0
    source: str = ""  # the weighted layer feeding it


@dataclass
class NormStats:
    """A BatchNorm layer's running variance and scale (gamma)."""

    name: str
    type: str
    var_min: float
    var_median: float
    collapsed: float  # fraction of channels with running variance below 1e-4
    gamma_min: float | None = None


@dataclass
class DiagReport:
    epoch: int
    step: int
    lr: float
    params: list[ParamStats] = field(default_factory=list)
    activations: list[ActStats] = field(default_factory=list)
    norms: list[NormStats] = field(default_factory=list)
    bptt: dict[str, Any] | None = None  # {"window": T, "boundary_grad_norm": x}
    flags: list[rules.Flag] = field(default_factory=list)
    nonfinite: bool = False
    grad_total: float = 0.0  # the L2 norm of all gradients together
    layout: Layout | None = field(default=None, repr=False, compare=False)  # for to_json

    def to_dict(self) -> dict[str, Any]:
        # NOTE: by hand, not dataclasses.asdict: this runs at every step with --diagnose=1.
        d = {k: v for k, v in self.__dict__.items() if k not in _SKIP}
        d.update({k: [dict(x.__dict__) for x in getattr(self, k)] for k in _LISTS})
        d = {"kind": "diag", **d}
        clean = math.isfinite(self.grad_total) and all(
            math.isfinite(p["weight_norm"]) for p in d["params"]
        )
        return d if clean else _finite_json(d)

    def to_json(self) -> str:
        """``json.dumps(self.to_dict())``: the same text, cheaper for the reports of a
        ``Diagnostics`` (this runs at every step with --diagnose=1)."""
        lay = self.layout
        if lay is None or self.nonfinite or self.norms or self.flags or self.bptt:
            return json.dumps(self.to_dict())
        vals = [self.epoch, self.step, self.lr, self.grad_total]
        for p in self.params:
            r = p.update_ratio
            vals += (p.grad_norm, p.grad_mean, p.grad_std, p.grad_max, p.zero_frac,
                     p.weight_norm, "null" if r is None else r)  # fmt: skip
        for a in self.activations:
            d, sat = a.dead, a.saturated
            vals += (a.units, "null" if d is None else d, "null" if sat is None else sat, a.mean)
        if not lay.fits(self, len(vals)):
            return json.dumps(self.to_dict())
        line = lay.template % tuple(vals)
        # NOTE: %s of a finite float is its repr, as json writes it; "inf"/"nan" in the text
        # (the template has neither) is a non-finite number: to_dict says how to write it.
        if "inf" in line or "nan" in line:
            return json.dumps(self.to_dict())
        return line

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiagReport:
        return cls(
            d["epoch"],
            d["step"],
            d.get("lr", 0.0),
            [ParamStats(**p) for p in d.get("params", [])],
            [ActStats(**a) for a in d.get("activations", [])],
            [NormStats(**n) for n in d.get("norms", [])],
            d.get("bptt"),
            [rules.Flag(**f) for f in d.get("flags", [])],
            d.get("nonfinite", False),
            as_float(d.get("grad_total", 0.0)),
        )

    def layer_norms(self) -> dict[str, float]:
        """Gradient norm per parameter name (what the sparklines plot)."""
        return {p.name: p.grad_norm for p in self.params}


_LISTS = ("params", "activations", "norms", "flags")
_SKIP = (*_LISTS, "layout")


class Layout:
    """The text of a model's ``"diag"`` line with its numbers left out: names, layers and
    shapes are the same at every check point, so ``to_json`` formats only the numbers."""

    def __init__(self, params: list[tuple[str, str, list[int]]], acts: list[tuple[str, str, str]]):
        self.names = [n for n, _, _ in params]
        self.acts = [(n, src) for n, _, src in acts]
        j = lambda v: json.dumps(v).replace("%", "%%")  # noqa: E731
        ps = [
            f'{{"name": {j(n)}, "layer": {j(layer)}, "shape": {j(shape)}, "grad_norm": %s, '
            '"grad_mean": %s, "grad_std": %s, "grad_max": %s, "zero_frac": %s, '
            '"weight_norm": %s, "update_ratio": %s}'
            for n, layer, shape in params
        ]
        acs = [
            f'{{"name": {j(n)}, "type": {j(k)}, "units": %s, "dead": %s, "saturated": %s, '
            f'"mean": %s, "source": {j(src)}}}'
            for n, k, src in acts
        ]
        self.template = (
            '{"kind": "diag", "epoch": %s, "step": %s, "lr": %s, "bptt": null, '
            '"nonfinite": false, "grad_total": %s, '
            f'"params": [{", ".join(ps)}], "activations": [{", ".join(acs)}], '
            '"norms": [], "flags": []}'
        )
        self.slots = 4 + 7 * len(params) + 4 * len(acts)
        # A name with "inf"/"nan" in it would read as a non-finite number to to_json.
        self.usable = "inf" not in self.template and "nan" not in self.template

    def fits(self, report: DiagReport, n_values: int) -> bool:
        acts = report.activations
        return (
            self.usable
            and n_values == self.slots
            and len(report.params) == len(self.names)
            and len(acts) == len(self.acts)
            and all(p.name == n for p, n in zip(report.params, self.names))
            and all(a.name == n and a.source == s for a, (n, s) in zip(acts, self.acts))
        )


def _finite_json(obj):
    # JSON has no inf/nan; the log must stay readable by any JSON parser.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_json(v) for v in obj]
    return obj


def as_float(v) -> float:
    """A logged number back as a float (``"inf"``/None as written by ``to_dict``)."""
    if v is None:
        return math.nan
    return float(v)


def parse_every(value) -> int | None:
    """``--diagnose`` value: "epoch"/0 -> None (epoch ends only), N >= 1 -> every N steps."""
    if value in (None, "epoch", 0, "0"):
        return None
    n = int(value)
    if n < 0:
        raise ValueError(value)
    return n or None


class Diagnostics:
    """Collects check points during training.

    Args:
        model: the Module being trained.
        optimizer: its optimizer (``param_groups[0]["lr"]`` is recorded).
        every: a check point every N steps as well as at epoch ends (None: epoch ends only).
        context: what the flag rules may cite: ``init`` (the spec's model.init), ``bptt``,
            ``clip_grad_norm``.
    """

    def __init__(self, model, optimizer, every: int | None = None, context=None):
        from bpcli.kernels import stats

        self._k = stats  # numba loads with the first Diagnostics, not with `bpcli diagnose`
        self.model, self.optimizer, self.every = model, optimizer, every
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.model_info = rules.ModelInfo.of(model, dict(context or {}))
        # The rules compare against Recent; only the latest check points are kept here, so a
        # check point at every step of a long run neither grows memory nor the GC's work.
        self.history: deque[DiagReport] = deque(maxlen=rules.HISTORY)
        self._recent = rules.Recent()
        self._removers: list = []
        self._acts: list[ActStats] = []
        self._pending: DiagReport | None = None
        self._state_in: list[Tensor] = []
        # What every check point reuses: the weights before the step are copied into
        # preallocated buffers, and the kernels write their sums into one array.
        self._meta = [
            (n, n.rsplit(".", 1)[0] if "." in n else "", list(p.shape)) for n, p in self.params
        ]
        self._snaps: list[np.ndarray] = [np.empty(0, np.float32) for _ in self.params]
        self._sums = np.zeros((len(self.params), 5))
        self._deltas = np.zeros(len(self.params))
        info = self.model_info
        self._layout = Layout(
            self._meta,
            [(n, k, info.before.get(n, "")) for n, _, k in info.activations],
        )
        self._hooks = [
            (mod, self._observer(name, kind, self.model_info.unit_axis(name)))
            for name, mod, kind in self.model_info.activations
        ]

    # -- when ----------------------------------------------------------------------------------
    def wants(self, step: int, last_of_epoch: bool) -> bool:
        """Is the step about to run (1-based ``step``) a check point?"""
        return step == 1 or last_of_epoch or (self.every is not None and step % self.every == 0)

    # -- during the step ------------------------------------------------------------------------
    def begin(self) -> None:
        """Before the forward: observe the activation layers."""
        self._acts = []
        self._removers = [mod.register_forward_hook(hook) for mod, hook in self._hooks]

    def track_state(self, state):
        """A carried recurrent state as leaves that require grad, so backward reports the
        gradient that reaches the truncation boundary of truncated BPTT."""
        self._state_in = []
        if state is None:
            return None
        if isinstance(state, tuple | list):
            return type(state)(self.track_state_one(s) for s in state)
        return self.track_state_one(state)

    def track_state_one(self, s):
        if isinstance(s, tuple | list):
            return type(s)(self.track_state_one(x) for x in s)
        t = Tensor(s.data, requires_grad=True)
        self._state_in.append(t)
        return t

    def after_backward(self, epoch: int, step: int) -> DiagReport:
        """After backward, before clipping: gradient statistics; copies the weights."""
        for remove in self._removers:
            remove()
        self._removers = []
        report = DiagReport(epoch, step, float(self.optimizer.param_groups[0]["lr"]))
        report.layout = self._layout
        report.params = self._param_stats()
        report.activations, self._acts = self._acts, []
        if self.model_info.norms:
            report.norms = _norm_stats(self.model_info.norms)
        report.grad_total = math.sqrt(float(self._sums[:, 1].sum()))
        report.nonfinite = not math.isfinite(report.grad_total)
        if self._state_in:
            g = [s.grad for s in self._state_in if s.grad is not None]
            norm = math.sqrt(sum(float(np.vdot(x, x)) for x in g)) if g else 0.0
            report.bptt = {
                "window": self.model_info.context.get("bptt"),
                "boundary_grad_norm": norm,
            }
            self._state_in = []
        self._pending = report
        return report

    def after_step(self) -> DiagReport:
        """After ``optimizer.step``: update/weight ratios, then the flags."""
        report, self._pending = self._pending, None
        ws = [p.data.reshape(-1) for _, p in self.params]
        if all(w.shape == w0.shape and w.dtype == w0.dtype for w, w0 in zip(ws, self._snaps)):
            if ws and all(w.dtype == ws[0].dtype for w in ws):
                self._k.delta_sq_all(tuple(ws), tuple(self._snaps), self._deltas)
            else:
                for i, (w, w0) in enumerate(zip(ws, self._snaps, strict=True)):
                    self._deltas[i] = self._k.delta_sq(w, w0)
            for st, d in zip(report.params, self._deltas.tolist(), strict=True):
                n0 = st.weight_norm
                st.update_ratio = math.sqrt(d) / n0 if n0 > 0 else None
        return self._finish(report)

    def abandon(self) -> DiagReport | None:
        """The step will not be taken (non-finite gradients): flag what was collected."""
        report, self._pending = self._pending, None
        for remove in self._removers:
            remove()
        self._removers = []
        return None if report is None else self._finish(report)

    def _finish(self, report: DiagReport) -> DiagReport:
        report.flags = rules.check(report, self.history, self.model_info, self._recent)
        self.history.append(report)
        self._recent.add(report)
        return report

    def _param_stats(self) -> list[ParamStats]:
        """Gradient sums, |w| and the weight snapshot of every parameter, in one kernel call
        when all share a float dtype (a call per parameter otherwise)."""
        sums, snaps, gs, ws = self._sums, self._snaps, [], []
        for i, (_, p) in enumerate(self.params):
            w = p.data.reshape(-1)
            if snaps[i].shape != w.shape or snaps[i].dtype != w.dtype:
                snaps[i] = np.empty_like(w)
            g = p.grad
            gs.append(w[:0] if g is None else g.reshape(-1))
            ws.append(w)
        sizes = [g.shape[0] for g in gs]
        dtype = ws[0].dtype if ws else None
        bits = _BITS.get(dtype)
        if bits is not None and all(g.dtype == dtype for g in gs + ws):
            gbits = tuple([g.view(bits[0]) for g in gs])
            self._k.grad_weight_stats_all(tuple(gs), gbits, bits[1], tuple(ws), tuple(snaps), sums)
        else:
            for i, (g, w) in enumerate(zip(gs, ws, strict=True)):
                if g.dtype not in _BITS:  # an integer or float16 gradient: summed as float64
                    g = g.astype(np.float64)
                bits = _BITS[g.dtype]
                self._k.grad_weight_stats(g, g.view(bits[0]), bits[1], w, snaps[i], sums[i])
        out = []
        for (name, layer, shape), (s, ss, gmax, zeros, ws), n in zip(
            self._meta, sums.tolist(), sizes
        ):
            if not n:
                out.append(ParamStats(name, layer, shape, 0.0, 0.0, 0.0, 0.0, 1.0, math.sqrt(ws)))
                continue
            norm = math.sqrt(ss)
            mean = s / n
            std = math.sqrt(max(ss / n - mean * mean, 0.0)) if math.isfinite(ss) else norm
            out.append(
                ParamStats(name, layer, shape, norm, mean, std, gmax, zeros / n, math.sqrt(ws))
            )
        return out

    def _observer(self, name: str, kind: str, axis: int):
        source = self.model_info.before.get(name, "")
        unit_activity, res = self._k.unit_activity, np.zeros(2)
        if kind in SATURATING:
            lo, hi = SATURATING[kind]
            m = SATURATION_MARGIN * (hi - lo)
            lo, hi = lo + m, hi - m
        else:
            lo, hi = 0.0, math.inf  # alive: above 0 somewhere in the batch

        def hook(module, args, out):
            if isinstance(out, Tensor):
                st = _act_stats(name, kind, out.data, axis, unit_activity, lo, hi, res)
                st.source = source
                self._acts.append(st)

        return hook


# The unsigned integer of each float's width, and its mask without the sign bit (an array:
# a numpy scalar argument costs Numba's dispatcher more than the kernel's work).
_BITS = {
    np.dtype(np.float32): (np.uint32, np.array([0x7FFFFFFF], np.uint32)),
    np.dtype(np.float64): (np.uint64, np.array([0x7FFFFFFFFFFFFFFF], np.uint64)),
}


def _act_stats(name, kind, y, axis, unit_activity, lo, hi, res) -> ActStats:
    """Units alive (ReLU) or inside the margins (sigmoid/tanh) over the batch, in one pass."""
    if y.ndim:
        axis %= y.ndim
        units = y.shape[axis]
        lead, trail = math.prod(y.shape[:axis]), math.prod(y.shape[axis + 1 :])
    else:
        units, lead, trail = 1, 1, 1
    st = ActStats(name, kind, int(units))
    if not y.size:
        return st
    if y.dtype not in _BITS:
        y = y.astype(np.float64)
    unit_activity(np.ascontiguousarray(y).reshape(lead, units, trail), lo, hi, res)
    active, total = res.tolist()
    st.mean = total / y.size
    if kind in DEAD:
        st.dead = 1.0 - active / units
    elif kind in SATURATING:
        st.saturated = 1.0 - active / units
    return st


def _norm_stats(norms) -> list[NormStats]:
    out = []
    for name, mod in norms:
        var = getattr(mod, "running_var", None)
        if var is None:
            continue
        v = var.data.astype(np.float64)
        gamma = getattr(mod, "weight", None)
        out.append(
            NormStats(
                name,
                type(mod).__name__,
                float(v.min()),
                float(np.median(v)),
                float((v < rules.BN_VAR_COLLAPSE).mean()),
                None if gamma is None else float(np.abs(gamma.data).min()),
            )
        )
    return out


# -- a whole run, afterwards ----------------------------------------------------------------
@dataclass
class RunDiagnostics:
    """Every check point of a run (``bpcli diagnose RUN_DIR``).

    Attributes:
        reports: the check points in step order.
        timeline: one entry per kind of flag raised: ``kind``, ``severity``, ``steps`` (the
            check points that raised it), and the latest ``layers``, ``evidence``, ``suggestion``.
    """

    run_dir: str
    reports: list[DiagReport]
    timeline: list[dict[str, Any]]

    def series(self, key: str = "grad_norm") -> dict[str, list[float]]:
        """Per parameter name, ``key`` at every check point (NaN where it is missing)."""
        out: dict[str, list[float]] = {}
        for i, r in enumerate(self.reports):
            for p in r.params:
                out.setdefault(p.name, [math.nan] * i).append(as_float(getattr(p, key)))
            for vals in out.values():
                vals.extend([math.nan] * (i + 1 - len(vals)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return _finite_json(
            {
                "run_dir": self.run_dir,
                "steps": [r.step for r in self.reports],
                "epochs": [r.epoch for r in self.reports],
                "grad_norm": self.series("grad_norm"),
                "update_ratio": self.series("update_ratio"),
                "flags": self.timeline,
                "last": self.reports[-1].to_dict() if self.reports else None,
            }
        )


def load_run(run_dir) -> RunDiagnostics:
    """The ``"diag"`` lines of a run directory's metrics.jsonl."""
    from pathlib import Path

    from bpcli.app import runs
    from bpcli.errors import BpcliError

    path = Path(run_dir) / runs.METRICS_FILE
    if not path.is_file():
        raise BpcliError(f"no {runs.METRICS_FILE} here: not a run directory", str(run_dir))
    try:
        reports = [DiagReport.from_dict(r) for r in runs.read_metrics(path)
                   if r.get("kind") == "diag"]  # fmt: skip
    except (KeyError, TypeError) as e:
        raise BpcliError(f"malformed diagnostics line: {e}", str(path)) from None
    if not reports:
        raise BpcliError(
            "no diagnostics recorded; train with --diagnose (the default of bpcli train)",
            str(run_dir),
        )
    timeline: dict[str, dict[str, Any]] = {}
    for r in reports:
        for f in r.flags:
            entry = timeline.setdefault(
                f.kind,
                {"kind": f.kind, "layers": f.layers, "severity": f.severity, "steps": []},
            )
            entry["steps"].append(r.step)
            entry.update(layers=f.layers, evidence=f.evidence, suggestion=f.suggestion)
    return RunDiagnostics(str(run_dir), reports, list(timeline.values()))
