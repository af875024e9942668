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

import math
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

    def to_dict(self) -> dict[str, Any]:
        # NOTE: by hand, not dataclasses.asdict: this runs at every step with --diagnose=1.
        d = {k: v for k, v in self.__dict__.items() if k not in _LISTS}
        d.update({k: [dict(x.__dict__) for x in getattr(self, k)] for k in _LISTS})
        d = {"kind": "diag", **d}
        clean = math.isfinite(self.grad_total) and all(
            math.isfinite(p["weight_norm"]) for p in d["params"]
        )
        return d if clean else _finite_json(d)

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
        self.model, self.optimizer, self.every = model, optimizer, every
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.model_info = rules.ModelInfo.of(model, dict(context or {}))
        self.history: list[DiagReport] = []
        self._removers: list = []
        self._acts: list[ActStats] = []
        self._before: list[np.ndarray] | None = None
        self._pending: DiagReport | None = None
        self._state_in: list[Tensor] = []

    # -- when ----------------------------------------------------------------------------------
    def wants(self, step: int, last_of_epoch: bool) -> bool:
        """Is the step about to run (1-based ``step``) a check point?"""
        return step == 1 or last_of_epoch or (self.every is not None and step % self.every == 0)

    # -- during the step ------------------------------------------------------------------------
    def begin(self) -> None:
        """Before the forward: observe the activation layers."""
        self._acts = []
        for name, mod, kind in self.model_info.activations:
            self._removers.append(mod.register_forward_hook(self._observer(name, kind)))

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
        report.params = [_param_stats(n, p) for n, p in self.params]
        report.activations, self._acts = self._acts, []
        report.norms = _norm_stats(self.model_info.norms)
        report.grad_total = math.sqrt(sum(p.grad_norm**2 for p in report.params))
        report.nonfinite = not math.isfinite(report.grad_total)
        if self._state_in:
            g = [s.grad for s in self._state_in if s.grad is not None]
            norm = math.sqrt(sum(float(np.vdot(x, x)) for x in g)) if g else 0.0
            report.bptt = {
                "window": self.model_info.context.get("bptt"),
                "boundary_grad_norm": norm,
            }
            self._state_in = []
        self._before = [p.data.copy() for _, p in self.params]
        self._pending = report
        return report

    def after_step(self) -> DiagReport:
        """After ``optimizer.step``: update/weight ratios, then the flags."""
        report, self._pending = self._pending, None
        for st, (_, p), w0 in zip(report.params, self.params, self._before, strict=True):
            n0 = st.weight_norm
            delta = _norm(np.subtract(p.data, w0, out=w0).ravel())
            st.update_ratio = delta / n0 if n0 > 0 else None
        self._before = None
        return self._finish(report)

    def abandon(self) -> DiagReport | None:
        """The step will not be taken (non-finite gradients): flag what was collected."""
        report, self._pending, self._before = self._pending, None, None
        for remove in self._removers:
            remove()
        self._removers = []
        return None if report is None else self._finish(report)

    def _finish(self, report: DiagReport) -> DiagReport:
        report.flags = rules.check(report, self.history, self.model_info)
        self.history.append(report)
        return report

    def _observer(self, name: str, kind: str):
        def hook(module, args, out):
            if isinstance(out, Tensor):
                st = _act_stats(name, kind, out.data, self.model_info.unit_axis(name))
                st.source = self.model_info.before.get(name, "")
                self._acts.append(st)

        return hook


def _param_stats(name: str, p) -> ParamStats:
    layer = name.rsplit(".", 1)[0] if "." in name else ""
    w = p.data.ravel()
    wn = _norm(w)
    g = p.grad
    if g is None or not g.size:
        return ParamStats(name, layer, list(p.shape), 0.0, 0.0, 0.0, 0.0, 1.0, wn)
    flat = g.ravel()
    n = flat.size
    # Five reductions in all (this runs at every step with --diagnose=1); std from the sums.
    norm = _norm(flat)
    mean = float(flat.sum(dtype=np.float64)) / n
    std = math.sqrt(max(norm * norm / n - mean * mean, 0.0)) if math.isfinite(norm) else norm
    gmax = max(float(flat.max()), -float(flat.min()))
    zeros = 1.0 - np.count_nonzero(flat) / n
    return ParamStats(name, layer, list(p.shape), norm, mean, std, gmax, zeros, wn)


def _norm(x: np.ndarray) -> float:
    """L2 norm by one BLAS dot; recomputed in float64 only if float32 squares overflowed."""
    sq = float(np.dot(x, x))
    if math.isinf(sq) and np.isfinite(x).all():
        sq = float(np.dot(x.astype(np.float64), x.astype(np.float64)))
    return math.sqrt(sq) if sq == sq else math.nan


def _act_stats(name: str, kind: str, y: np.ndarray, axis: int) -> ActStats:
    axis = axis % y.ndim if y.ndim else 0
    units = y.shape[axis] if y.ndim else 1
    per_unit = np.moveaxis(y, axis, -1).reshape(-1, units) if y.ndim else y.reshape(1, 1)
    st = ActStats(name, kind, int(units), mean=float(y.mean()) if y.size else 0.0)
    if not y.size:
        return st
    if kind in DEAD:
        st.dead = float(1.0 - np.count_nonzero((per_unit > 0).any(axis=0)) / units)
    elif kind in SATURATING:
        lo, hi = SATURATING[kind]
        m = SATURATION_MARGIN * (hi - lo)
        inner = (per_unit > lo + m) & (per_unit < hi - m)
        st.saturated = float(1.0 - np.count_nonzero(inner.any(axis=0)) / units)
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
