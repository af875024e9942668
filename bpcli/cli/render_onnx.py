"""Rich rendering of ``bpcli export``, ``bpcli import`` and ``bpcli onnx check``."""

from __future__ import annotations

import dataclasses
import json

from rich.table import Table

from bpcli.cli.render import console


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def export_result(r, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_dict()))
        return
    out = console()
    batch = "dynamic batch" if r.dynamic_batch else "static batch"
    mode = ", training mode" if r.training else ""
    out.print(f"[bold]{r.path}[/bold]: opset {r.opset}, {batch}{mode}, {r.n_nodes} nodes, "
              f"{r.n_initializers} initializers, {r.n_params:,} parameters")  # fmt: skip
    out.print(f"  from {r.checkpoint}" + (f" ({r.spec_name})" if r.spec_name else ""))
    for name, shape, dtype in r.inputs:
        out.print(f"  input  {name} {shape} {dtype}")
    out.print(f"  output {', '.join(r.outputs)}")
    out.print(f"  ops: {_ops(r.op_types)}")
    pre = getattr(r, "preprocessing", None)
    out.print(f"  preprocessing in the graph: {', '.join(pre)} (takes raw inputs)" if pre
              else "  preprocessing in the graph: none")  # fmt: skip
    if r.verify is not None:
        v = r.verify
        verdict = "[green]match[/green]" if v["ok"] else "[red]DIFFER[/red]"
        legs = v.get("legs") or {}
        for leg, what in (("real", f"raw samples of {v.get('source')}"), ("random", "random")):
            if leg in legs:
                d = legs[leg]
                agree = "" if d["agreement"] is None else (
                    f", same class {100 * d['agreement']:.2f}%")  # fmt: skip
                out.print(f"  {d['n']} {what}: max abs diff {d['max_abs']:.3g}, max rel diff "
                          f"{d['max_rel']:.3g}{agree}")  # fmt: skip
        need = ""
        if v.get("agreement") is not None:
            need = f", same class >= {100 * v['min_agreement']:g}%"
        out.print(
            f"onnxruntime vs bpcli: max abs diff {v['max_abs']:.3g}, max rel diff "
            f"{v['max_rel']:.3g} (rtol {v['rtol']:g}, atol {v['atol']:g}{need}): {verdict}"
        )
    elif r.verify_skipped:
        out.print(f"[yellow]not verified:[/yellow] {r.verify_skipped}")


def bpcli_metadata(meta: dict) -> None:
    """What a file exported by bpcli says about its inputs: preprocessing, task, classes."""
    pre = meta.get("bpcli.preprocessing")
    out = console()
    if isinstance(pre, dict):
        steps = [s["op"] for s in pre.get("steps", [])]
        if steps:
            out.print(f"preprocessing in the graph: {', '.join(steps)} (feed raw inputs)")
        elif pre.get("left_out"):
            out.print(f"preprocessing left out: {', '.join(pre['left_out'])}: {pre.get('note')}")
    if meta.get("bpcli.task"):
        classes = meta.get("bpcli.classes")
        names = f": {', '.join(map(str, classes))}" if isinstance(classes, list) else ""
        out.print(f"task {meta['bpcli.task']}{names}")


def import_summary(s, as_json: bool = False) -> None:
    if as_json:
        d = dataclasses.asdict(s)
        d["inputs"] = [{"name": n, "shape": list(sh), "dtype": dt} for n, sh, dt in s.inputs]
        d["outputs"] = [{"name": n, "shape": list(sh), "dtype": dt} for n, sh, dt in s.outputs]
        print(json.dumps(d))
        return
    out = console()
    conv = f" (converted from opset {s.converted_from})" if s.converted_from else ""
    out.print(f"[bold]{s.source}[/bold]: {s.producer or 'unknown producer'}, opset {s.opset}{conv}")
    table = Table(show_header=True, box=None)
    for col in ("", "name", "shape", "dtype"):
        table.add_column(col)
    for kind, rows in (("input", s.inputs), ("output", s.outputs)):
        for n, sh, dt in rows:
            table.add_row(kind, n, str(list(sh)), dt)
    out.print(table)
    out.print(f"ops ({sum(s.op_counts.values())}): {_ops(s.op_counts)}")
    out.print(
        f"parameters: {s.n_params:,} in {len(s.trainable) + len(s.frozen)} tensors "
        f"({len(s.trainable)} trainable, {len(s.frozen)} frozen), {len(s.buffers)} buffers"
    )
    if s.upcast:
        out.print(f"float16/bfloat16 upcast to float32 for training ({s.upcast} tensors and types)")
    if s.narrow_weights:
        out.print(f"[yellow]{s.narrow_weights} float16/bfloat16 initializers are constants "
                  "here[/yellow]; `bpcli train` upcasts the graph and trains them in "
                  "float32")  # fmt: skip
    if s.untied:
        out.print("untied shared initializers: " + ", ".join(s.untied))
    if s.no_gradient_ops:
        out.print("[yellow]ops with no gradient:[/yellow] " + ", ".join(s.no_gradient_ops))


def check_result(r, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_dict()))
        return
    conv = f", converted from {r.converted_from}" if r.converted_from else ""
    bad = r.unsupported
    table = Table(title=f"{r.path}: {len(r.rows)} nodes (opset {r.opset}{conv})")
    for col in ("node", "op", "domain", "opset", "supported"):
        table.add_column(col, overflow="fold")
    for row in r.rows:
        ok = "[green]yes[/green]" if row.supported else f"[red]no[/red]: {row.reason}"
        table.add_row(row.node, row.op, row.domain, str(row.opset), ok)
    out = console()
    out.print(table)
    if bad:
        ops = sorted({f"{b.op} ({b.domain}, opset {b.opset})" for b in bad})
        out.print(f"[red]{len(bad)} unsupported node(s)[/red]: {', '.join(ops)}")
    else:
        out.print("[green]every node is supported[/green]")
