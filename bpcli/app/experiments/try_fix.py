"""``bpcli diagnose RUN --try-fix``: train a short copy of a run with the suggested fix and one
without it, from the same seed, and compare the monitored metric of the two.

The fix is the ``--set`` overrides of the most basic flag raised (``PRIORITY``: badly scaled
inputs make every other reading meaningless, a blown-up run hides its other problems, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import BpcliError

PRIORITY = ("inputs", "exploding", "vanishing", "saturation", "batchnorm", "dead_units",
            "update_ratio", "bptt")  # fmt: skip


def chosen_fix(timeline: list[dict]) -> dict | None:
    """The flag (warn/error) whose fix to try first: the most basic kind with ``set`` lines."""
    flags = [e for e in timeline if e["severity"] != "info" and e.get("set")]
    rank = {k: i for i, k in enumerate(PRIORITY)}
    return min(flags, key=lambda e: rank.get(e["kind"], len(rank)), default=None)


@dataclass
class TryFix:
    kind: str
    sets: list[str]
    monitor: str
    without: float  # the best monitored value without the fix
    with_fix: float
    accuracy: tuple[float | None, float | None]
    epochs: int

    @property
    def improved(self) -> bool:
        from bpcli.app.experiments.diag_corpus import better

        return better(self.with_fix, self.without, self.monitor)

    def to_dict(self) -> dict:
        clean = lambda v: None if v is None or not math.isfinite(v) else v  # noqa: E731
        return {"kind": self.kind, "set": self.sets, "monitor": self.monitor,
                "without": clean(self.without), "with_fix": clean(self.with_fix),
                "val_accuracy": list(self.accuracy), "epochs": self.epochs,
                "improved": self.improved}  # fmt: skip


def try_fix(spec, timeline: list[dict], work: Path, epochs: int | None = None) -> TryFix:
    """Train ``spec`` (a resolved Spec) twice in ``work``, with and without the chosen fix."""
    from bpcli.app.experiments.diag_corpus import _accuracy, best_value
    from bpcli.app.spec.schema import apply_overrides, resolve
    from bpcli.app.training.loop import train

    entry = chosen_fix(timeline)
    if entry is None:
        raise BpcliError("no flag with a fix to try: the run raised none", "--try-fix")
    out = []
    for name, sets in (("without", []), ("with-fix", entry["set"])):
        raw = spec.to_dict()
        apply_overrides(raw, sets)
        s = resolve(raw, spec.source)
        n = epochs or s.train["epochs"]
        res = train(s, out_dir=work / name, overwrite=True, epochs=n, argv=["try-fix"])
        out.append((best_value(res), _accuracy(res), res.monitor, n))
    (v0, a0, monitor, n), (v1, a1, _, _) = out
    return TryFix(entry["kind"], list(entry["set"]), monitor, v0, v1, (a0, a1), n)


def try_fix_run(run_dir, epochs: int | None, work: Path) -> TryFix:
    from bpcli.app.diagnostics.report import load_run
    from bpcli.app.spec.schema import load_spec
    from bpcli.app.store import runs

    spec_file = Path(run_dir) / runs.SPEC_FILE
    if not spec_file.is_file():
        raise BpcliError(f"no {runs.SPEC_FILE} here: --try-fix needs the run's spec",
                         str(run_dir))  # fmt: skip
    return try_fix(load_spec(spec_file), load_run(run_dir).timeline, work, epochs)
