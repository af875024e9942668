"""Train the labelled runs of corpus.toml and print a table of runs and the precision and
recall of each flag kind (``make diagnostics-corpus``).

    python bench/diagnostics/run.py [--fast] [--only NAME ...] [--json FILE] [--keep DIR]

Exit 1 when a healthy run raises a warn/error flag or a broken run misses its kind.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bpcli.app.diagnostics import corpus  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus.toml"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="only the runs marked fast")
    ap.add_argument("--only", nargs="+", default=(), help="only these runs")
    ap.add_argument("--json", help="write the outcomes as JSON lines here")
    ap.add_argument("--keep", help="train in this directory (kept) instead of a temporary one")
    args = ap.parse_args(argv)
    cases = corpus.load_corpus(CORPUS)
    if args.fast:
        cases = [c for c in cases if c.fast]
    if args.only:
        unknown = set(args.only) - {c.name for c in cases}
        if unknown:
            print(f"bench/diagnostics: no run named {sorted(unknown)[0]!r}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c.name in args.only]
    from rich.console import Console

    console = Console(highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        outcomes = []
        for c in cases:
            o = corpus.run_case(c, work)
            outcomes.append(o)
            mark = "ok  " if o.ok else "FAIL"
            console.print(f"{mark} {c.name:28s} {o.seconds:5.1f}s  expect "
                          f"{','.join(c.expect) or '-':14s} raised {','.join(o.raised) or '-'}")
    console.print(runs_table(outcomes))
    console.print(scores_table(corpus.score(outcomes)))
    bad = [o for o in outcomes if not o.ok]
    healthy = [o for o in outcomes if o.case.healthy]
    console.print(f"{len(healthy) - sum(1 for o in healthy if o.raised)}/{len(healthy)} healthy "
                  f"runs quiet, {sum(1 for o in outcomes if not o.case.healthy and o.ok)}/"
                  f"{len(outcomes) - len(healthy)} broken runs raise their kind")
    if args.json:
        with open(args.json, "w") as f:
            for o in outcomes:
                f.write(json.dumps(outcome_dict(o)) + "\n")
    return 1 if bad else 0


def outcome_dict(o) -> dict:
    return {"name": o.case.name, "expect": o.case.expect, "raised": o.raised, "ok": o.ok,
            "monitor": o.monitor, "value": None if math.isnan(o.value) else o.value,
            "val_accuracy": o.accuracy, "seconds": o.seconds, "stopped": o.stopped}


def runs_table(outcomes):
    from rich.table import Table

    t = Table(title="Corpus runs", title_justify="left", pad_edge=False)
    for col in ("run", "expect", "raised", "best val_loss", "val acc", "s", "cause"):
        t.add_column(col, no_wrap=col != "cause")
    for o in outcomes:
        style = None if o.ok else "red"
        acc = "—" if o.accuracy is None else f"{100 * o.accuracy:.1f}%"
        t.add_row(o.case.name, ", ".join(o.case.expect) or "healthy", ", ".join(o.raised) or "—",
                  f"{o.value:.3g}", acc, f"{o.seconds:.1f}", o.case.cause, style=style)
    return t


def scores_table(scores):
    from rich.table import Table

    t = Table(title="Flags per kind", title_justify="left", pad_edge=False)
    for col in ("kind", "true +", "false +", "missed", "precision", "recall"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    pct = lambda x: "—" if math.isnan(x) else f"{100 * x:.0f}%"  # noqa: E731
    for s in scores:
        t.add_row(s.kind, str(s.tp), str(s.fp), str(s.fn), pct(s.precision), pct(s.recall))
    return t


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
