"""The report objects of gradient diagnostics and their serialised form: ``DiagReport`` is one
check point (``to_dict()`` is its ``{"kind": "diag", ...}`` line of ``metrics.jsonl``),
``RunDiagnostics`` every check point of a run as ``load_run`` reads them back.

During training the numbers live in a record array (``record``); these objects
are made from its rows when the check points are written out (epoch end, end of the run).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from bpcli.app.diagnostics import rules, verdict


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
    saturated: float | None = None  # sigmoid/tanh: share of outputs within 1% of a bound
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
    # root mean square of the first weighted layer's input, kept where it is too large
    input_rms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in _LISTS}
        if d.get("input_rms") is None:  # the line of a calm check point has no such key
            d.pop("input_rms", None)
        d.update({k: [dict(x.__dict__) for x in getattr(self, k)] for k in _LISTS})
        return _finite_json({"kind": "diag", **d})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

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
            d.get("input_rms"),
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


# -- a whole run, afterwards ----------------------------------------------------------------
@dataclass
class RunDiagnostics:
    """Every check point of a run (``bpcli diagnose RUN_DIR``).

    Attributes:
        reports: the check points in step order.
        timeline: one entry per kind of flag raised: ``kind``, ``severity`` (``info`` where
            the run-level verdict did not confirm it, with ``why``), ``steps`` and ``epochs``
            (the check points that raised it), and the latest ``layers``, ``evidence``,
            ``suggestion``.
    """

    run_dir: str
    reports: list[DiagReport]
    timeline: list[dict[str, Any]]
    epochs: list[dict[str, Any]] = field(default_factory=list)  # the run's "epoch" lines
    names: dict[str, str] = field(default_factory=dict)  # module path -> readable name

    def label(self, name: str) -> str:
        """``3`` -> ``3 linear (128→64)`` (``names.label_of``)."""
        from bpcli.app.diagnostics.names import label_of

        return label_of(name, self.names)

    @property
    def flags(self) -> list[dict[str, Any]]:
        """The timeline's warn and error entries (the rest are notes)."""
        return [e for e in self.timeline if e["severity"] != "info"]

    @property
    def notes(self) -> list[dict[str, Any]]:
        return [e for e in self.timeline if e["severity"] == "info"]

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
                "names": self.names,
                "last": self.reports[-1].to_dict() if self.reports else None,
            }
        )


def load_run(run_dir) -> RunDiagnostics:
    """The ``"diag"`` lines of a run directory's metrics.jsonl."""
    from pathlib import Path

    from bpcli.app.store import runs
    from bpcli.errors import BpcliError

    path = Path(run_dir) / runs.METRICS_FILE
    if not path.is_file():
        raise BpcliError(f"no {runs.METRICS_FILE} here: not a run directory", str(run_dir))
    try:
        records = list(runs.read_metrics(path))
        reports = [DiagReport.from_dict(r) for r in records if r.get("kind") == "diag"]
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
            entry.setdefault("epochs", []).append(r.epoch)
            entry.update(layers=f.layers, evidence=f.evidence, suggestion=f.suggestion,
                         set=f.set)  # fmt: skip
    epochs = [r for r in records if r.get("kind") == "epoch"]
    chance = verdict.chance_loss(_manifest(run_dir).get("data", {}).get("n_classes"))
    init = _spec_init(run_dir)
    kind = init.get("type") if isinstance(init, dict) else init
    judged = verdict.judge(list(timeline.values()), epochs, chance,
                           any(r.nonfinite for r in reports), reports[-1].lr,
                           kind in rules.HAND_DRAWN)  # fmt: skip
    labels: dict[str, str] = {}
    for r in records:
        if r.get("kind") == "diag_layers" and isinstance(r.get("names"), dict):
            labels = r["names"]
    return RunDiagnostics(str(run_dir), reports, judged, epochs, labels)


def _spec_init(run_dir):
    """The run's spec model.init (None if unreadable or not given)."""
    import tomllib
    from pathlib import Path

    try:
        raw = tomllib.loads((Path(run_dir) / "spec.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw.get("model", {}).get("init")


def _manifest(run_dir) -> dict:
    from pathlib import Path

    p = Path(run_dir) / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
