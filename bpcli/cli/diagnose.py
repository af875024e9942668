"""``bpcli diagnose RUN_DIR``: the gradient health of a finished (or running) training run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bpcli.cli.group import cli
from bpcli.errors import BpcliError


@click.command("diagnose")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--svg",
    "svg",
    type=click.Path(dir_okay=False),
    help="Also save the charts (loss, gradient norms, update ratios, dead and "
    "saturated shares) as SVG (needs bpcli[plot]).",
)
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False),
    help="Also save the charts as a self-contained HTML page.",
)
@click.option("--png", "png", type=click.Path(dir_okay=False), help="Also save them as PNG.")
@click.option("--json", "as_json", is_flag=True, help="The numbers as one JSON object.")
@click.option(
    "--try-fix",
    "try_fix",
    is_flag=True,
    help="Train a short copy of the run with the suggested fix and one without it, "
    "from the same seed, and print the monitored metric of both.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs of the --try-fix copies (default: the run's, at most 5).",
)
def diagnose_cmd(run_dir: str, svg: str | None, html: str | None, png: str | None,
                 as_json: bool, try_fix: bool, epochs: int | None) -> None:  # fmt: skip
    """Show how the gradients of RUN_DIR evolved: per parameter the gradient norm over the
    run's check points (a log-scale sparkline), the flags raised and when, with their evidence
    and fix, and the last check point in full.

    \b
    Examples:
      bpcli diagnose runs/deep-sigmoid-20250101-120000
      bpcli diagnose runs/<run> --png health.png
      bpcli diagnose runs/<run> --try-fix --epochs 5
      bpcli diagnose runs/<run> --json | jq '.flags[].kind'
    """
    from bpcli.app.diagnostics.report import load_run

    run = load_run(run_dir)
    if try_fix:
        _try_fix(run_dir, epochs, as_json)
        return
    if epochs is not None:
        raise BpcliError("--epochs is the length of the --try-fix copies; add --try-fix",
                         "--epochs")  # fmt: skip
    if as_json:
        click.echo(json.dumps(run.to_dict()))
        return
    from rich.console import Console

    from bpcli.cli.render_diag import run_view

    charts = [p for p in (svg, html, png) if p]
    if charts:
        from bpcli.cli import render_charts

        for path in charts:  # checked before anything is drawn or printed
            if Path(path).suffix.lower() not in render_charts.FORMATS:
                raise BpcliError("the file needs the extension .svg, .html or .png", path)
        render_charts._plt()
    console = Console(highlight=False)
    console.print(f"[bold]{Path(run_dir).name}[/bold]  gradient diagnostics")
    console.print(run_view(run))
    for path in charts:
        render_charts.save(render_charts.run_figure(run), path)
        console.print(f"saved {path}")


def _try_fix(run_dir: str, epochs: int | None, as_json: bool) -> None:
    import tempfile

    from bpcli.app.diagnostics.report import load_run
    from bpcli.app.experiments.try_fix import chosen_fix, try_fix_run

    if chosen_fix(load_run(run_dir).timeline) is None:
        raise BpcliError("no flag with a fix to try: the run raised none", "--try-fix")
    with tempfile.TemporaryDirectory(prefix="bpcli-try-fix-") as tmp:
        if epochs is None:
            from bpcli.app.spec.schema import load_spec

            epochs = min(5, load_spec(Path(run_dir) / "spec.toml").train["epochs"])
        if not as_json:
            click.echo(f"training two {epochs}-epoch copies of {run_dir}, with and without the "
                       "fix ...")  # fmt: skip
        r = try_fix_run(run_dir, epochs, Path(tmp))
    if as_json:
        click.echo(json.dumps(r.to_dict()))
        return
    acc = lambda a: "" if a is None else f", val accuracy {100 * a:.1f}%"  # noqa: E731
    click.echo(f"fix for {r.kind}: " + " ".join(f"--set '{x}'" for x in r.sets))
    click.echo(f"  without the fix: best {r.monitor} {r.without:.4g}{acc(r.accuracy[0])}")
    click.echo(f"  with the fix:    best {r.monitor} {r.with_fix:.4g}{acc(r.accuracy[1])}")
    click.echo("  the fix helps" if r.improved else "  the fix does not help on this run")


cli.add_command(diagnose_cmd)
