"""All Rich rendering of the CLI lives here; commands hand it plain dataclasses."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table


def console() -> Console:
    return Console(highlight=False)


def console_to(file) -> Console:
    """A console that renders as a terminal would, into ``file`` (for timing the renderers)."""
    return Console(file=file, force_terminal=True, highlight=False)


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def bench_results(results, startup=None, as_json: bool = False) -> None:
    if as_json:
        for r in results:
            print(json.dumps(r.to_dict()))
        if startup is not None:
            print(json.dumps({"workload": "startup", **vars(startup)}))
        return
    table = Table(
        title="Training step, median (bpcli vs PyTorch, same process)",
        caption="*-epoch: one whole epoch; lstm, transformer: one truncated-BPTT step of the "
        "char-lstm / tiny-transformer specs; ratio < 1: bpcli is faster",
    )
    for col in ("workload", "bpcli ms", "torch ms", "ratio", "fwd ms", "bwd/fwd", "GFLOP/s"):
        table.add_column(col, justify="right" if col != "workload" else "left")
    for r in results:
        ratio = _fmt(r.ratio, ".2f") + ("x" if r.ratio is not None else "")
        table.add_row(
            r.workload, _fmt(r.bpcli_ms, ".3f"), _fmt(r.torch_ms, ".3f"), ratio,
            _fmt(r.bpcli_forward_ms, ".3f"), _fmt(r.backward_over_forward, ".2f"),
            _fmt(r.gflops, ".1f"),
        )  # fmt: skip
    out = console()
    out.print(table)
    if startup is not None:
        out.print(
            f"start-up (import + first MLP step, fresh process): "
            f"cold cache {startup.cold_s:.2f} s, "
            f"warm cache {startup.warm_s:.2f} s; import bpcli {startup.import_s:.2f} s"
        )


def ops_table(rows, as_json: bool = False) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r.to_dict()))
        return
    table = Table(title=f"{len(rows)} ops: forward; backward (VJP)")
    for col in ("family", "op", "formula", "ONNX"):
        table.add_column(col, overflow="fold")
    for r in rows:
        onnx = r.onnx or "[dim](composed)[/dim]"
        formula = r.formula if r.differentiable else f"{r.formula} [dim](no gradient)[/dim]"
        table.add_row(r.family, r.name, formula, onnx)
    console().print(table)


def plugin_report(report, as_json: bool = False) -> None:
    if as_json:
        for p in report.plugins:
            print(json.dumps(p.to_dict()))
        return
    table = Table(title="bpcli plugins")
    for col in ("plugin", "source", "registers"):
        table.add_column(col, overflow="fold")
    for p in report.plugins:
        parts = "\n".join(
            f"[bold]{kind}[/bold]: {', '.join(names)}" for kind, names in p.parts.items()
        )
        table.add_row(p.name, p.source, parts or "[dim](hooks only)[/dim]")
    out = console()
    out.print(table)
    for w in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {w}")


def diag_overhead(rows, as_json: bool = False) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r.to_dict()))
        return
    table = Table(title="Gradient diagnostics on mlp-digits: median epoch, relative to off")
    for col in ("reporter", "diagnostics", "epoch ms", "per step µs", "cost"):
        table.add_column(col, justify="left" if col in ("reporter", "diagnostics") else "right")
    for r in rows:
        cost = "—" if r.mode == "off" else f"{100 * (r.ratio - 1):+.1f}%"
        table.add_row(r.reporter, r.mode, f"{r.epoch_ms:.2f}", f"{r.step_us:.0f}", cost)
    console().print(table)
