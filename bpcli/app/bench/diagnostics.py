"""What gradient diagnostics cost: mlp-digits trained with them off, at epoch ends, and at
every step, in shuffled rounds; median epoch time of each mode relative to "off".

An mlp-digits epoch is 40 steps of ~0.2 ms, the hardest case for a fixed per-check-point cost.
The first epoch of each run (compilation, caches) is left out.
"""

from __future__ import annotations

import random
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

MODES = {"off": None, "epoch": "epoch", "every step": 1}


@dataclass
class DiagOverhead:
    mode: str
    reporter: str
    epoch_ms: float  # median epoch time
    ratio: float  # to the "off" mode with the same reporter
    step_us: float

    def to_dict(self) -> dict:
        return asdict(self)


def measure(reporters: dict, rounds: int = 10, epochs: int = 5) -> list[DiagOverhead]:
    """Median epoch time per (reporter, mode) over ``rounds`` shuffled rounds.

    ``reporters`` maps a name to a factory of the trainer Reporter to time with (the CLI passes
    its own terminal and JSON reporters: what they do with each check point is part of the cost).
    """
    from bpcli.app.spec.schema import load_spec
    from bpcli.app.store import runs
    from bpcli.app.training.loop import train

    spec_path = Path(__file__).resolve().parents[3] / "models" / "mlp-digits.toml"
    spec = load_spec(spec_path, overrides=[f"train.epochs={epochs}"])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for kind, make_reporter in reporters.items():
            times = {m: [] for m in MODES}
            for rnd in range(rounds + 1):  # round 0 warms caches and is not timed
                order = list(MODES)
                random.Random(rnd).shuffle(order)
                for mode in order:
                    n += 1
                    run_dir = Path(tmp) / f"r{n}"
                    train(spec, out_dir=run_dir, diagnose=MODES[mode], reporter=make_reporter())
                    if rnd == 0:
                        continue
                    epochs_ = [r for r in runs.read_metrics(run_dir / "metrics.jsonl")
                               if r.get("kind") == "epoch"]  # fmt: skip
                    times[mode].append(statistics.median(r["seconds"] for r in epochs_[1:]))
            base = statistics.median(times["off"])
            steps = max(1, _steps_per_epoch(spec))
            for mode, ts in times.items():
                med = statistics.median(ts)
                out.append(DiagOverhead(mode, kind, 1e3 * med, med / base, 1e6 * med / steps))
    return out


def _steps_per_epoch(spec) -> int:
    from bpcli.app.model.build import build

    return build(spec).steps_per_epoch
