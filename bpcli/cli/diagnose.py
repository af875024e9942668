"""``bpcli diagnose RUN_DIR``: the gradient health of a finished (or running) training run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bpcli.cli.group import cli


@click.command("diagnose")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--svg", "svg", type=click.Path(dir_okay=False), help="Also save the view as SVG.")
@click.option("--html", "html", type=click.Path(dir_okay=False), help="Also save it as HTML.")
@click.option("--json", "as_json", is_flag=True, help="The numbers as one JSON object.")
def diagnose_cmd(run_dir: str, svg: str | None, html: str | None, as_json: bool) -> None:
    """Show how the gradients of RUN_DIR evolved: per parameter the gradient norm over the
    run's check points (a log-scale sparkline), the flags raised and when, with their evidence
    and fix, and the last check point in full.

    \b
    Examples:
      bpcli diagnose runs/deep-sigmoid-20250101-120000
      bpcli diagnose runs/<run> --svg grads.svg
      bpcli diagnose runs/<run> --json | jq '.flags[].kind'
    """
    from bpcli.app.diagnostics.report import load_run

    run = load_run(run_dir)
    if as_json:
        click.echo(json.dumps(run.to_dict()))
        return
    from rich.console import Console

    from bpcli.cli.render_diag import run_view

    console = Console(highlight=False, record=bool(svg or html))
    console.print(f"[bold]{Path(run_dir).name}[/bold]  gradient diagnostics")
    console.print(run_view(run))
    if svg:
        console.save_svg(svg, title=f"bpcli diagnose {run_dir}", clear=False)
    if html:
        console.save_html(html, clear=False)
    for path in (p for p in (svg, html) if p):
        console.print(f"saved {path}")


cli.add_command(diagnose_cmd)
