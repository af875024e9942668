"""Rendering of gradient diagnostics: a table per check point (a row per parameter, grouped by
layer, with a sparkline of its gradient norm over the run), coloured flags with evidence and
fix, the compact line printed at each epoch end, and the whole-run view of ``bpcli diagnose``.

Takes ``DiagReport``/``RunDiagnostics`` objects (``bpcli.app.diagnostics.collect``) and only draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.app.diagnostics.names import label_of

BARS = "▁▂▃▄▅▆▇█"
FLAG_STYLE = {"error": "bold red", "warn": "yellow"}


def _num(x) -> str:
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.2g}" if 1e-2 <= abs(x) < 1e3 else f"{x:.1e}"


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def sparkline(values: Sequence[float], width: int = 16) -> Text:
    """Gradient norms on a log scale (they span orders of magnitude); a red ``!`` marks a
    non-finite value. More values than ``width`` are resampled to the last of each bucket."""
    vals = list(values)
    if len(vals) > width:
        vals = [vals[min(len(vals) - 1, (i + 1) * len(vals) // width - 1)] for i in range(width)]
    logs = [math.log10(v) for v in vals if isinstance(v, float | int) and 0 < v < math.inf]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 0.0)
    out = Text()
    for v in vals:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(" ")
        elif not math.isfinite(v):
            out.append("!", style="bold red")
        elif v <= 0:
            out.append(BARS[0], style="dim")
        else:
            i = 0 if hi - lo < 1e-12 else round((math.log10(v) - lo) / (hi - lo) * (len(BARS) - 1))
            out.append(BARS[i], style="cyan")
    return out


def _layer_flags(report) -> dict[str, list]:
    by: dict[str, list] = {}
    for f in report.flags:
        for name in f.layers:
            by.setdefault(name, []).append(f)
    return by


def diag_table(report, series: dict[str, list[float]] | None = None, title: str = "",
               trend_width: int = 16, names: dict[str, str] | None = None) -> Table:  # fmt: skip
    """One check point: a row per parameter tensor, layer name on its first row (``names``:
    readable layer names, ``3 linear (128→64)``); the trend column is ``trend_width``
    characters (narrow terminals need the room for the numbers). Flags of the activation a
    layer feeds are on its row; the activation's own share of dead or saturated units is in
    ``activation_notes``, under its own heading."""
    label = (lambda n: label_of(n, names)) if names else (lambda n: n)
    title = title or f"Gradient health at step {report.step} (epoch {report.epoch})"
    table = Table(title=title, title_justify="left", pad_edge=False, padding=(0, 1))
    # numbers keep their width (they are the point); long layer and tensor names give way,
    # and without the room for it (trend_width 0) the trend column is left out
    for col, justify, lo, hi in (
        ("layer", "left", 5, 28 if names else 14), ("param", "left", 5, 16),
        ("|grad|", "right", 7, None),
        ("max|g|", "right", 7, None), ("zeros", "right", 5, None), ("|w|", "right", 7, None),
        ("upd/w", "right", 7, None), ("trend", "left", trend_width, None),
        ("flags", "left", 9, None),
    ):  # fmt: skip
        if col != "trend" or trend_width:
            table.add_column(col, justify=justify, no_wrap=col != "flags", min_width=lo,
                             max_width=hi)  # fmt: skip
    flagged = _layer_flags(report)
    acts = {a.name: a for a in report.activations}
    after = _activation_after(report)
    prev = None
    for p in report.params:
        layer = p.layer or "(model)"
        short = p.name[len(p.layer) + 1 :] if p.layer else p.name
        flags = flagged.get(p.layer, []) + flagged.get(p.name, [])
        act = acts.get(after.get(p.layer, ""))
        for f in flagged.get(act.name, []) if act is not None else []:
            flags.append(f)
        cells = Text()
        for kind, severity in dict.fromkeys((f.kind, f.severity) for f in flags):
            cells.append(kind + " ", style=FLAG_STYLE.get(severity, "yellow"))
        style = "red" if not math.isfinite(p.grad_norm) else None
        table.add_row(
            label(layer) if layer != prev else "", short, Text(_num(p.grad_norm), style=style),
            _num(p.grad_max), _pct(p.zero_frac), _num(p.weight_norm), _num(p.update_ratio),
            *([sparkline((series or {}).get(p.name, [p.grad_norm]), trend_width)]
              if trend_width else []), cells,
        )  # fmt: skip
        prev = layer
    return table


def activation_notes(report, names: dict[str, str] | None = None) -> Text | None:
    """``Notes``: each activation layer with dead or saturated units, by its readable name."""
    rows = []
    for a in report.activations:
        share = a.dead if a.dead is not None else a.saturated
        if share:
            what = "of units dead" if a.dead is not None else "of outputs saturated"
            src = f" (fed by {label_of(a.source, names or {})})" if a.source else ""
            rows.append(f"  {label_of(a.name, names or {})}{src}: {_pct(share)} {what}")
    if not rows:
        return None
    return Text("Notes\n", style="bold").append("\n".join(rows), style="")


def _activation_after(report) -> dict[str, str]:
    """Weighted layer name -> the activation it feeds (the first one, if several)."""
    out: dict[str, str] = {}
    for a in report.activations:
        out.setdefault(a.source, a.name)
    return out


def flag_lines(flags, names: dict[str, str] | None = None) -> Group:
    """Each flag: kind, layers, evidence; then the fix on its own line."""
    items = []
    for f in flags:
        head = Text(f"{'✖' if f.severity == 'error' else '⚠'} {f.kind}",
                    style=FLAG_STYLE.get(f.severity, "yellow"))  # fmt: skip
        if f.layers:
            head.append(f" in {_names([label_of(n, names or {}) for n in f.layers])}",
                        style="bold")  # fmt: skip
        head.append(f": {f.evidence}")
        items += [head, Text(f"  fix: {f.suggestion}", style="green")]
    return Group(*items)


def _names(layers: list[str], most: int = 6) -> str:
    shown = ", ".join(layers[:most])
    return shown + (f", … ({len(layers)} layers)" if len(layers) > most else "")


def compact_line(report) -> Text:
    """The one line shown after an epoch: ``grad health: ok`` or the flags raised."""
    t = Text("  grad health: ", style="dim")
    ws = [p.grad_norm for p in report.params if len(p.shape) >= 2]
    if not report.flags:
        t.append("ok", style="green")
    for i, f in enumerate(report.flags):
        t.append(", " if i else "")
        t.append(f.kind, style=FLAG_STYLE.get(f.severity, "yellow"))
        if f.layers:
            t.append(f" in {_names(f.layers, 4)}")
    if ws:
        t.append(f"  |grad| first→last layer {_num(ws[0])}→{_num(ws[-1])}", style="dim")
    return t


def run_view(run) -> Group:
    """``bpcli diagnose``: the gradient norm of every parameter over the run, the flags and
    when they were raised, then the last check point in full."""
    steps = [r.step for r in run.reports]
    norms, ratios = run.series("grad_norm"), run.series("update_ratio")
    table = Table(title=f"Gradient norm over the run: {len(steps)} check points, steps "
                  f"{steps[0]}..{steps[-1]}", title_justify="left", pad_edge=False)  # fmt: skip
    for col, justify in (("param", "left"), ("first", "right"), ("last", "right"),
                         ("min", "right"), ("max", "right"), ("upd/w last", "right"),
                         ("gradient norm over steps (log)", "left")):  # fmt: skip
        table.add_column(col, justify=justify, no_wrap=True)
    for name, vals in norms.items():
        finite = [v for v in vals if math.isfinite(v)]
        table.add_row(
            run.label(name), _num(vals[0]), _num(vals[-1]), _num(min(finite) if finite else None),
            _num(max(finite) if finite else None), _num(ratios.get(name, [None])[-1]),
            sparkline(vals, width=32),
        )  # fmt: skip
    parts = [table]
    if run.flags:
        parts.append(_timeline_table("Flags raised", run.flags, steps, run))
    else:
        parts.append(Text("no flags raised at any check point", style="green"))
    if run.notes:
        parts.append(_timeline_table("Notes (not confirmed by the loss)", run.notes, steps, run))
    last = run.reports[-1]
    parts.append(diag_table(last, norms, f"Last check point: step {last.step} (epoch "
                                         f"{last.epoch})", names=run.names))  # fmt: skip
    notes = activation_notes(last, run.names)
    if notes is not None:
        parts.append(notes)
    return Group(*parts)


def _timeline_table(title: str, entries, steps, run) -> Table:
    t = Table(title=title, title_justify="left", pad_edge=False, show_lines=True)
    for col in ("flag", "when", "latest evidence and fix"):
        t.add_column(col, no_wrap=col != "latest evidence and fix")
    for e in entries:
        when = _when(e["steps"], steps) if e["steps"] else f"epoch {e['epochs'][0]}"
        body = Text()
        if e.get("layers"):
            body.append(", ".join(run.label(n) for n in e["layers"][:6]) + "\n", style="bold")
        body.append(e["evidence"] + "\n")
        if e.get("why"):
            body.append(f"a note, not a flag: {e['why']}\n", style="dim")
        body.append("fix: " + e["suggestion"], style="green")
        for line in fix_lines(e):
            body.append("\n" + line, style="green")
        kind = Text(e["kind"], style=FLAG_STYLE.get(e["severity"], "dim"))
        t.add_row(kind, when, body)
    return t


def fix_lines(entry) -> list[str]:
    """The entry's fix as a line to paste: ``--set a=b --set c=d``."""
    sets = entry.get("set") or []
    return ["  " + " ".join(f"--set '{s}'" for s in sets)] if sets else []


def _when(raised: list[int], steps: list[int]) -> str:
    n = len(raised)
    span = f"step {raised[0]}" if n == 1 else f"steps {raised[0]}..{raised[-1]}"
    return f"{span}\n{n}/{len(steps)} check points"
