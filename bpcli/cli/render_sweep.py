"""Rich rendering of ``bpcli sweep`` (heatmap table) and ``bpcli lr-find`` (loss curve)."""

from __future__ import annotations

import json
import math

from rich.table import Table

from bpcli.cli.render import console

BLOCKS = " ▁▂▃▄▅▆▇█"


def run_progress(run, done: int, total: int) -> None:
    status = "[red]diverged[/red]" if run.status == "diverged" else run.status
    metric = "—" if run.metric is None else f"{run.metric:.4g}"
    console().print(f"[dim][{done}/{total}][/dim] init {run.init}, lr {run.lr:.3g}, seed "
                    f"{run.seed}: {status} {metric}", highlight=False)  # fmt: skip


def _colour(v: float, lo: float, hi: float, higher_better: bool) -> str:
    t = 0.5 if hi <= lo else (v - lo) / (hi - lo)
    t = t if higher_better else 1 - t
    return "green" if t > 0.8 else "yellow" if t > 0.4 else "dark_orange" if t > 0.15 else "red"


def sweep_result(r, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_dict()))
        return
    fmt = ".1%" if r.metric == "accuracy" else ".3g"
    best = r.best()
    vals = [v for i in r.inits for lr in r.lrs if (v := r.cell(i, lr)[0]) is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    what = "final val accuracy" if r.metric == "accuracy" else "final loss"
    table = Table(title=f"sweep {r.spec}: {what}, {r.epochs} epoch(s), {len(r.seeds)} seed(s) "
                        f"(✗ = diverged)")  # fmt: skip
    table.add_column("init \\ lr")
    for lr in r.lrs:
        table.add_column(f"{lr:.3g}", justify="right")
    for init in r.inits:
        row = []
        for lr in r.lrs:
            v, bad = r.cell(init, lr)
            if bad or v is None:
                row.append("[bold red]✗[/bold red]")
                continue
            cell = f"[{_colour(v, lo, hi, r.higher_is_better)}]{format(v, fmt)}[/]"
            if best and best[0] == init and best[1] == lr:
                cell = f"[reverse bold]{format(v, fmt)}[/reverse bold]"
            row.append(cell)
        table.add_row(init, *row)
    out = console()
    out.print(table)
    if best:
        out.print(f"best: init {best[0]}, lr {best[1]:.3g} ({what} {format(best[2], fmt)})")
    else:
        out.print("[bold red]every run diverged[/bold red]: try lower learning rates")
    for init in r.inits:
        reg = r.stable_region(init)
        span = "none" if reg is None else f"lr {reg[0]:.3g} .. {reg[1]:.3g}"
        out.print(f"stable region, {init}: {span}")
    n_bad = sum(x.status != "ok" for x in r.runs)
    out.print(f"{len(r.runs)} runs ({n_bad} diverged or failed) in {r.seconds:.1f} s; "
              f"{r.out_dir}/runs.csv, sweep.json")  # fmt: skip


def _plot(lrs, ys, width: int = 60, height: int = 10) -> list[str]:
    """A text plot of ys against log(lr): one column per bucket of steps."""
    n = len(ys)
    cols = [ys[int(i * n / width)] for i in range(min(width, n))]
    finite = [c for c in cols if math.isfinite(c)]
    lo, hi = min(finite), max(finite)
    lines = []
    for row in range(height, 0, -1):
        level = lo + (hi - lo) * (row - 1) / height
        chars = []
        for c in cols:
            frac = (c - level) / ((hi - lo) / height) if hi > lo else 0
            chars.append(BLOCKS[max(1, min(8, int(frac * 8)))] if c > level or row == 1 else " ")
        label = f"{lo + (hi - lo) * row / height:8.3g} |" if row in (height, 1) else " " * 9 + "|"
        lines.append(label + "".join(chars))
    lines.append(" " * 9 + "+" + "-" * len(cols))
    lines.append(" " * 10 + f"{lrs[0]:.1e}" + " " * max(1, len(cols) - 14) + f"{lrs[-1]:.1e}")
    return lines


def lr_find_result(r, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_dict()))
        return
    out = console()
    if len(r.lrs) < 3:
        out.print("[red]too few steps before the loss diverged; lower --min-lr[/red]")
        return
    out.print(f"lr range test {r.spec}: smoothed loss vs lr (log scale), {len(r.lrs)} steps"
              + (" (stopped: loss > 4x its minimum)" if r.stopped_early else ""))  # fmt: skip
    for line in _plot(r.lrs, r.smoothed):
        out.print(line, highlight=False, markup=False)
    steep = "—" if r.steepest_lr is None else f"{r.steepest_lr:.3g}"
    out.print(f"steepest descent at lr {steep}; minimum loss at lr {r.min_loss_lr:.3g}")
    sug = "—" if r.suggested_lr is None else f"{r.suggested_lr:.3g}"
    out.print(f"[bold]suggested lr: {sug}[/bold]")
