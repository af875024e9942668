"""Rich rendering of ``bpcli gradcheck`` and ``bpcli plugins check``."""

from __future__ import annotations

import json

from rich.table import Table

from bpcli.cli.render import console

PASS, FAIL = "[green]pass[/green]", "[bold red]FAIL[/bold red]"


def _shape(s) -> str:
    return "(" + ", ".join(map(str, s)) + ")"


def gradcheck_report(r, per_tensor: bool = False, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_dict()))
        return
    title = (f"gradcheck {r.source}: L = {r.objective}, batch {r.batch}, float64, eps {r.eps:g}, "
             f"pass if |err| <= {r.atol:g} + {r.rtol:g}*|grad|")  # fmt: skip
    table = Table(title=title)
    first = ("tensor", "layer", "shape", "mode") if per_tensor else ("layer", "type", "tensors")
    for col in (*first, "checks", "max abs err", "max rel err", "result"):
        table.add_column(
            col, justify="left" if col in first[:2] else "right", no_wrap=col in ("tensor", "shape")
        )
    if per_tensor:
        for t in r.tensors:
            note = f" ({t.retried} kink retr.)" if t.retried else ""
            table.add_row(t.name, t.layer, _shape(t.shape), t.mode, str(t.checks),
                          f"{t.max_abs:.1e}", f"{t.max_rel:.1e}",
                          (PASS if t.passed else FAIL) + note)  # fmt: skip
    else:
        for lc in r.layers:
            table.add_row(lc.layer, lc.layer_type, str(lc.tensors), str(lc.checks),
                          f"{lc.max_abs:.1e}", f"{lc.max_rel:.1e}",
                          PASS if lc.passed else FAIL)  # fmt: skip
    out = console()
    out.print(table)
    retried = sum(t.retried for t in r.tensors)
    if retried:
        out.print(f"[dim]{retried} check(s) crossed a kink (ReLU, max) at eps and passed at a "
                  "smaller step[/dim]")  # fmt: skip
    verdict = (
        "[green]all passed[/green]"
        if r.passed
        else "[bold red]FAILED[/bold red]: " + ", ".join(t.name for t in r.tensors if not t.passed)
    )
    out.print(f"{len(r.tensors)} tensors, {r.checks} checks in {r.seconds:.2f} s: {verdict}")


STATUS = {"pass": PASS, "fail": FAIL, "skip": "[yellow]skip[/yellow]",
          "error": "[bold red]error[/bold red]"}  # fmt: skip


def plugin_check_report(r, as_json: bool = False) -> None:
    if as_json:
        for p in r.parts:
            print(json.dumps(p.to_dict()))
        return
    table = Table(title="bpcli plugins check")
    for col in ("plugin", "kind", "part", "result", "detail", "ONNX round trip"):
        table.add_column(col, overflow="fold")
    for p in r.parts:
        table.add_row(p.plugin, p.kind, p.name, STATUS.get(p.status, p.status), p.detail,
                      p.onnx or "[dim]—[/dim]")  # fmt: skip
    out = console()
    if not r.parts:
        out.print("no third-party plugin parts to check (--builtins checks the built-ins)")
    else:
        out.print(table)
    for w in r.warnings:
        out.print(f"[yellow]warning:[/yellow] {w}")
    counts = {s: sum(p.status == s for p in r.parts) for s in STATUS}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
