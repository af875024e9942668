"""``bpcli plot RUN [RUN ...]``: a metric per epoch of several runs on one chart."""

from __future__ import annotations

from pathlib import Path

import click

from bpcli.cli.group import cli
from bpcli.errors import BpcliError


@click.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--metric",
    default="val_loss",
    show_default=True,
    help="The epoch metric to compare (val_loss, val_accuracy, train_loss, ...).",
)
@click.option(
    "-o",
    "--out",
    default="plot.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The chart: .png, .svg or .html.",
)
def plot_cmd(run_dirs: tuple[str, ...], metric: str, out: str) -> None:
    """Compare runs: METRIC per epoch of every RUN_DIR on one chart (needs bpcli[plot]).

    \b
    Examples:
      bpcli plot runs/mlp-a runs/mlp-b --metric val_accuracy -o acc.png
      bpcli plot runs/* -o loss.svg
    """
    from bpcli.app.store import runs as store
    from bpcli.cli import render_charts

    if Path(out).suffix.lower() not in render_charts.FORMATS:
        raise BpcliError("the file needs the extension .svg, .html or .png", "--out")
    render_charts._plt()
    series = []
    for d in run_dirs:
        path = Path(d) / store.METRICS_FILE
        if not path.is_file():
            raise BpcliError(f"no {store.METRICS_FILE} here: not a run directory", d)
        epochs = [r for r in store.read_metrics(path) if r.get("kind") == "epoch"]
        if not epochs:
            raise BpcliError("no epoch finished in this run yet", d)
        if not any(metric in e for e in epochs):
            known = sorted({k for e in epochs for k in e if k.startswith(("train_", "val_"))})
            raise BpcliError(f"no {metric!r} in this run; it has {', '.join(known)}", d)
        series.append((Path(d).name, epochs))
    render_charts.save(render_charts.compare_figure(series, metric), out)
    click.echo(f"saved {out}: {metric} of {len(series)} run(s)")


cli.add_command(plot_cmd)
