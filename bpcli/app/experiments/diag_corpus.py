"""The corpus of labelled runs that the flag rules are calibrated on (``bench/diagnostics``):
healthy runs that must raise no warn/error flag and broken runs with a known cause that must
raise their kind. ``run_case`` trains one short run with diagnostics at every epoch end (the
default of ``bpcli train``) and reads back what was flagged; ``score`` gives precision and
recall per flag kind.

A corpus file is TOML: ``[[run]]`` tables with ``name``, ``base`` (a spec path relative to the
corpus file), ``set`` (``--set`` overrides), ``expect`` (the flag kinds it must raise; empty:
healthy), ``cause`` (a line saying what is wrong) and ``fast`` (part of the test subset).
``{data}`` in an override is the directory of the generated data files (``make_data``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bpcli.errors import BpcliError

KINDS = ("vanishing", "exploding", "dead_units", "saturation", "update_ratio", "batchnorm",
         "inputs", "bptt")  # fmt: skip
RAW_DIGITS = "digits-x1000.npz"  # the digits as raw pixel counts x 1000: inputs not scaled
ONNX_MLP = "mlp.onnx"  # specs/mlp.toml's untrained model, exported: the imported-graph run


@dataclass
class Case:
    name: str
    base: Path
    set: list[str]
    expect: list[str]
    cause: str = ""
    fast: bool = False

    @property
    def healthy(self) -> bool:
        return not self.expect


@dataclass
class Outcome:
    """One corpus run: the kinds it raised (warn/error flags at any check point)."""

    case: Case
    raised: list[str]
    monitor: str
    value: float  # the best value of the monitored metric (NaN: none finite)
    accuracy: float | None
    seconds: float
    stopped: str
    run_dir: Path | None = None
    flags: list = field(default_factory=list)  # the run's timeline entries

    @property
    def ok(self) -> bool:
        want = set(self.case.expect)
        return want <= set(self.raised) and (not self.case.healthy or not self.raised)


def load_corpus(path) -> list[Case]:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BpcliError(f"cannot read the corpus ({e})", str(p)) from None
    cases, seen = [], set()
    for i, r in enumerate(raw.get("run", [])):
        where = f"{p}: run {i + 1}"
        name = r.get("name")
        if not name or name in seen:
            raise BpcliError("every run needs a name of its own", where)
        seen.add(name)
        bad = [k for k in r.get("expect", []) if k not in KINDS]
        if bad:
            raise BpcliError(f"unknown flag kind {bad[0]!r} (one of {', '.join(KINDS)})", where)
        cases.append(Case(name, (p.parent / r["base"]).resolve(), list(r.get("set", [])),
                          list(r.get("expect", [])), r.get("cause", ""),
                          bool(r.get("fast", False))))  # fmt: skip
    return cases


def make_data(data_dir: Path) -> Path:
    """The generated data files the corpus refers to as ``{data}``."""
    import numpy as np

    from bpcli.data import load_digits

    data_dir.mkdir(parents=True, exist_ok=True)
    raw = data_dir / RAW_DIGITS
    if not raw.exists():
        d = load_digits(scale=False, flatten=True)
        np.savez(raw, x=d.x.astype(np.float32) * 1000.0, y=d.y)
    onnx_file = data_dir / ONNX_MLP
    if not onnx_file.exists():
        _export_mlp(onnx_file)
    return data_dir


def _export_mlp(path: Path) -> None:
    from bpcli.app.model.build import build
    from bpcli.app.spec.schema import load_spec
    from bpcli.engine.random import manual_seed
    from bpcli.engine.tensor import Tensor
    from bpcli.onnx.exporter.export import export

    spec = load_spec(Path(__file__).resolve().parents[3] / "bench" / "diagnostics" / "specs"
                     / "mlp.toml")  # fmt: skip
    manual_seed(spec.seed)
    built = build(spec)
    x = built.splits.train.x[:2]
    export(built.model, Tensor(x), path)


def case_spec(case: Case, data_dir: Path, extra=()):
    from bpcli.app.spec.schema import load_spec

    sets = [s.replace("{data}", str(data_dir)) for s in (*case.set, *extra)]
    return load_spec(case.base, sets)


def run_case(case: Case, work: Path, extra=(), name: str | None = None) -> Outcome:
    """Train ``case`` (with ``extra`` overrides) in ``work/<name>`` and read its flags."""
    from bpcli.app.diagnostics.report import load_run
    from bpcli.app.training.loop import train

    data_dir = make_data(work / "data")
    spec = case_spec(case, data_dir, extra)
    run_dir = work / (name or case.name)
    result = train(spec, out_dir=run_dir, overwrite=True, diagnose="epoch", argv=["corpus"])
    flags = load_run(run_dir).timeline
    raised = sorted({e["kind"] for e in flags if e["severity"] in ("warn", "error")})
    return Outcome(case, raised, result.monitor, best_value(result), _accuracy(result),
                   result.seconds, result.stopped_reason, run_dir, flags)  # fmt: skip


def best_value(result) -> float:
    """The best finite value of the monitored metric over the epochs (NaN if none)."""
    vals = [r.get(result.monitor) for r in result.history]
    vals = [float(v) for v in vals if isinstance(v, int | float) and math.isfinite(v)]
    if not vals:
        return math.nan
    return max(vals) if metric_mode(result.monitor) == "max" else min(vals)


def metric_mode(metric: str) -> str:
    return "min" if metric.endswith(("loss", "mse", "mae", "perplexity")) else "max"


IMPROVED = 0.01  # a fix must better the metric by more than 1% to count as helping


def better(a: float, b: float, metric: str) -> bool:
    """Is ``a`` better than ``b`` by more than ``IMPROVED`` of it (NaN: worse than anything)?"""
    if not math.isfinite(a):
        return False
    if not math.isfinite(b):
        return True
    if metric_mode(metric) == "min":
        return a < b - IMPROVED * abs(b)
    return a > b + IMPROVED * abs(b)


def _accuracy(result) -> float | None:
    vals = [r.get("val_accuracy") for r in result.history if r.get("val_accuracy") is not None]
    return max(vals) if vals else None


@dataclass
class KindScore:
    kind: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan


def score(outcomes: list[Outcome]) -> list[KindScore]:
    """Per kind: a raise is a true positive where the run is labelled with it, a false
    positive on a healthy run (a broken run raising another kind besides its own is a
    secondary symptom, counted neither way), a miss where the label is not raised."""
    out = []
    for kind in KINDS:
        tp = sum(1 for o in outcomes if kind in o.case.expect and kind in o.raised)
        fn = sum(1 for o in outcomes if kind in o.case.expect and kind not in o.raised)
        fp = sum(1 for o in outcomes if o.case.healthy and kind in o.raised)
        if tp or fn or fp:
            out.append(KindScore(kind, tp, fp, fn))
    return out


# -- margins ----------------------------------------------------------------------------------
# Per rule: the measurement, its threshold and whether a larger value is the problem.
def thresholds() -> dict[str, tuple[str, float, bool]]:
    from bpcli.app.diagnostics import rules, verdict

    return {
        "vanishing": ("orders of magnitude first layer below largest", rules.VANISH_ORDERS, True),
        "dead_units": ("largest share of dead ReLU units", rules.DEAD_FRAC, True),
        "saturation": ("largest share of saturated outputs", rules.SATURATED_FRAC, True),
        "saturation loss": (
            "saturated runs: last training loss / chance loss",
            verdict.SATURATION_LOSS,
            True,
        ),
        "batchnorm": ("largest share of collapsed BatchNorm channels", 0.5, True),
        "inputs": ("root mean square of the inputs", rules.INPUT_RMS, True),
        "exploding": ("largest epoch training loss / chance loss", verdict.LOSS_BLOWUP, True),
        "update_ratio": ("last/first epoch training loss (stall)", verdict.STALL, True),
    }


def measure(o: Outcome) -> dict[str, float]:
    """What each rule measured on the run, at its worst check point or epoch."""
    import numpy as np

    from bpcli.app.diagnostics import verdict
    from bpcli.app.store import runs

    recs = list(runs.read_metrics(o.run_dir / runs.METRICS_FILE))
    diag = [r for r in recs if r.get("kind") == "diag"]
    epochs = [r for r in recs if r.get("kind") == "epoch"]
    m = {k: 0.0 for k in thresholds()}
    for r in diag:
        ws = [p["grad_norm"] for p in r["params"] if len(p["shape"]) >= 2
              and isinstance(p["grad_norm"], float)]  # fmt: skip
        if len(ws) >= 3 and ws[0] > 0:
            m["vanishing"] = max(m["vanishing"], math.log10(max(ws) / ws[0]))
        elif len(ws) >= 3 and max(ws) > 0:
            m["vanishing"] = math.inf
        for a in r["activations"]:
            if a.get("dead") is not None:
                m["dead_units"] = max(m["dead_units"], a["dead"])
            if a.get("saturated") is not None:
                m["saturation"] = max(m["saturation"], a["saturated"])
        for n in r.get("norms", []):
            m["batchnorm"] = max(m["batchnorm"], n["collapsed"] or 0.0)
    spec = case_spec(o.case, o.run_dir.parent / "data")
    from bpcli.app.model.build import build

    x = build(spec).splits.train.x
    if x.dtype.kind == "f":
        m["inputs"] = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    manifest = json_load(o.run_dir / "manifest.json")
    chance = verdict.chance_loss(manifest.get("data", {}).get("n_classes"))
    losses = [e["train_loss"] for e in epochs if isinstance(e.get("train_loss"), int | float)]
    if chance and losses:
        m["exploding"] = max(x if math.isfinite(x) else math.inf for x in losses) / chance
    if losses:
        m["update_ratio"] = losses[-1] / losses[0] if losses[0] else math.inf
    if chance and losses and m["saturation"] >= thresholds()["saturation"][1]:
        m["saturation loss"] = losses[-1] / chance
    return m


def json_load(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def margins(outcomes: list[Outcome]) -> list[tuple]:
    """Per rule: (kind, what, threshold, worst healthy value, weakest broken value of the runs
    labelled with it): a threshold between the two with room on both sides is calibrated."""
    ms = {o.case.name: measure(o) for o in outcomes}
    out = []
    for kind, (what, limit, _) in thresholds().items():
        healthy = [ms[o.case.name][kind] for o in outcomes if o.case.healthy]
        label = kind.split()[0]
        broken = [ms[o.case.name][kind] for o in outcomes if label in o.case.expect]
        out.append((kind, what, limit, max(healthy, default=math.nan),
                    min(broken, default=math.nan)))  # fmt: skip
    return out
