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

from bpcli.app.experiments import diag_corpus as corpus

CORPUS = Path(__file__).resolve().parent / "corpus.toml"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="only the runs marked fast")
    ap.add_argument("--only", nargs="+", default=(), help="only these runs")
    ap.add_argument("--json", help="write the outcomes as JSON lines here")
    ap.add_argument("--keep", help="train in this directory (kept) instead of a temporary one")
    ap.add_argument(
        "--try-fix",
        action="store_true",
        help="also train every flagged broken run with its suggested fix",
    )
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

    console = Console(highlight=False, width=max(150, Console().width))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        outcomes = []
        for c in cases:
            o = corpus.run_case(c, work)
            outcomes.append(o)
            mark = "ok  " if o.ok else "FAIL"
            console.print(
                f"{mark} {c.name:28s} {o.seconds:5.1f}s  expect "
                f"{','.join(c.expect) or '-':14s} raised {','.join(o.raised) or '-'}"
            )
        fixes = try_fixes(outcomes, work, console) if args.try_fix else []
    console.print(runs_table(outcomes))
    if fixes:
        console.print(fixes_table(fixes))
    console.print(margins_table(corpus.margins(outcomes)))
    console.print(scores_table(corpus.score(outcomes)))
    bad = [o for o in outcomes if not o.ok]
    healthy = [o for o in outcomes if o.case.healthy]
    console.print(
        f"{len(healthy) - sum(1 for o in healthy if o.raised)}/{len(healthy)} healthy "
        f"runs quiet, {sum(1 for o in outcomes if not o.case.healthy and o.ok)}/"
        f"{len(outcomes) - len(healthy)} broken runs raise their kind"
    )
    if args.json:
        with open(args.json, "w") as f:
            for o in outcomes:
                f.write(json.dumps(outcome_dict(o)) + "\n")
    return 1 if bad else 0


def try_fixes(outcomes, work, console) -> list[tuple]:
    """(run, kind of fix, --set lines, metric without, with, improved) per flagged broken run."""
    from bpcli.app.experiments.try_fix import chosen_fix

    out = []
    for o in outcomes:
        entry = chosen_fix(o.flags) if not o.case.healthy else None
        if entry is None:
            continue
        fixed = corpus.run_case(o.case, work, extra=entry["set"], name=o.case.name + "-fix")
        up = corpus.better(fixed.value, o.value, o.monitor)
        out.append(
            (
                o.case.name,
                entry["kind"],
                entry["set"],
                o.value,
                fixed.value,
                up,
                o.accuracy,
                fixed.accuracy,
            )
        )
        console.print(
            f"fix  {o.case.name:28s} {entry['kind']:12s} {o.value:.3g} -> "
            f"{fixed.value:.3g} {'improved' if up else 'NOT improved'}"
        )
    return out


def fixes_table(fixes):
    from rich.table import Table

    t = Table(
        title="Suggested fixes, tried (same seed, same epochs)",
        title_justify="left",
        pad_edge=False,
    )
    for col in ("run", "flag", "--set", "val_loss", "fixed", "val acc", "fixed acc", ""):
        t.add_column(col)
    acc = lambda a: "—" if a is None else f"{100 * a:.1f}%"  # noqa: E731
    for name, kind, sets, v0, v1, up, a0, a1 in fixes:
        t.add_row(
            name,
            kind,
            " ".join(sets),
            f"{v0:.3g}",
            f"{v1:.3g}",
            acc(a0),
            acc(a1),
            "improved" if up else "not improved",
            style=None if up else "red",
        )
    n = sum(1 for f in fixes if f[5])
    share = 100 * n / len(fixes)
    t.caption = f"the fix improved {n} of {len(fixes)} flagged broken runs ({share:.0f}%)"
    return t


def outcome_dict(o) -> dict:
    return {
        "name": o.case.name,
        "expect": o.case.expect,
        "raised": o.raised,
        "ok": o.ok,
        "monitor": o.monitor,
        "value": None if math.isnan(o.value) else o.value,
        "val_accuracy": o.accuracy,
        "seconds": o.seconds,
        "stopped": o.stopped,
    }


def runs_table(outcomes):
    from rich.table import Table

    t = Table(title="Corpus runs", title_justify="left", pad_edge=False)
    for col in ("run", "expect", "raised", "best val_loss", "val acc", "s", "cause"):
        t.add_column(col, no_wrap=col != "cause")
    for o in outcomes:
        style = None if o.ok else "red"
        acc = "—" if o.accuracy is None else f"{100 * o.accuracy:.1f}%"
        t.add_row(
            o.case.name,
            ", ".join(o.case.expect) or "healthy",
            ", ".join(o.raised) or "—",
            f"{o.value:.3g}",
            acc,
            f"{o.seconds:.1f}",
            o.case.cause,
            style=style,
        )
    return t


def margins_table(rows):
    from rich.table import Table

    t = Table(
        title="Thresholds and their margins on the corpus", title_justify="left", pad_edge=False
    )
    for col in ("flag", "measured", "threshold", "worst healthy", "weakest broken", "margins"):
        t.add_column(col, justify="left" if col in ("flag", "measured") else "right")
    for kind, what, limit, healthy, broken in rows:
        lo = limit / healthy if healthy > 0 else math.inf
        hi = broken / limit if limit > 0 else math.inf
        t.add_row(
            kind, what, f"{limit:.3g}", f"{healthy:.3g}", f"{broken:.3g}", f"{lo:.2g}x / {hi:.2g}x"
        )
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
