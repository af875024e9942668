"""``bpcli sweep`` (learning rate x initialiser grid) and ``bpcli lr-find`` (LR range test)."""

from __future__ import annotations

import click

from bpcli.cli.group import cli


@click.command("sweep")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, exists=True))
@click.option("--lr", "lr_text", default="1e-4:1e0:9", show_default=True,
              help="LO:HI:N log-spaced learning rates, or a comma list.")  # fmt: skip
@click.option("--init", "init_text", default="he,xavier,lecun,normal", show_default=True,
              help="Comma list of initialisers (he, xavier, lecun, normal = N(0, 0.1), or "
                   "any registered initialiser name).")  # fmt: skip
@click.option("--epochs", type=int, default=3, show_default=True, help="Epochs per run.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds per setting.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Sweep folder (default runs/sweep-<name>-<timestamp>).")  # fmt: skip
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override any other spec field (repeatable).")  # fmt: skip
@click.option("--dataset", metavar="NAME|FILE",
              help="Train on this registered dataset or data file instead of the spec's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def sweep_cmd(spec_path, lr_text, init_text, epochs, seeds, jobs, out, sets, dataset,
              as_json) -> None:  # fmt: skip
    """Train a grid of short runs: learning rates x initialisers x seeds.

    Prints a heatmap (final validation accuracy, or loss for regression; diverged runs
    marked), the best setting and, per initialiser, the range of learning rates where
    training is stable. Every run's numbers go to runs.csv and sweep.json in the sweep folder.

    \b
    Examples:
      bpcli sweep models/spirals.toml
      bpcli sweep models/spirals.toml --lr 1e-4:1e1:6 --init he,xavier --epochs 3 --jobs 2
      mpiexec -n 4 bpcli sweep models/spirals.toml   # trials spread over 4 ranks
    """
    from bpcli.cli.train import mpi_world_size
    from bpcli.data.sources import dataset_overrides

    sets = (*dataset_overrides(dataset), *sets)
    args = (spec_path, lr_text, init_text, epochs, seeds, jobs, out, sets, as_json)
    if mpi_world_size() > 1:  # under mpiexec: the trials spread over the ranks
        from bpcli.dist.guard import run_rank
        from bpcli.dist.sweep import map_over_ranks

        run_rank(lambda par: _sweep(*args, map_over_ranks(par), par.rank == 0), None)
    else:
        _sweep(*args)


def _sweep(spec_path, lr_text, init_text, epochs, seeds, jobs, out, sets, as_json,
           map_runs=None, shows: bool = True) -> None:  # fmt: skip
    from bpcli.app.experiments.sweep import parse_lrs, sweep
    from bpcli.cli import render_sweep

    lrs = parse_lrs(lr_text)
    inits = [i.strip() for i in init_text.split(",") if i.strip()]
    progress = None if as_json or not shows else render_sweep.run_progress
    result = sweep(spec_path, lrs, inits, epochs=epochs, seeds=seeds, jobs=jobs, out_dir=out,
                   sets=sets, on_run=progress, map_runs=map_runs)  # fmt: skip
    if result is not None:
        render_sweep.sweep_result(result, as_json=as_json)


@click.command("lr-find")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, exists=True))
@click.option("--min-lr", type=float, default=1e-6, show_default=True)
@click.option("--max-lr", type=float, default=10.0, show_default=True)
@click.option("--steps", type=int, help="Steps (default: one epoch, at least 100).")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override any spec field (repeatable).")  # fmt: skip
@click.option("--dataset", metavar="NAME|FILE",
              help="Train on this registered dataset or data file instead of the spec's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def lr_find_cmd(spec_path, min_lr, max_lr, steps, sets, dataset, as_json) -> None:
    """Learning-rate range test: raise the LR exponentially, watch the loss, suggest an LR.

    The suggestion is where the smoothed loss falls fastest (or the minimum's LR / 10).

    \b
    Example:
      bpcli lr-find models/mlp-digits.toml
    """
    from bpcli.app.experiments.lr_find import lr_find
    from bpcli.app.spec.schema import load_spec
    from bpcli.cli import render_sweep
    from bpcli.data.sources import dataset_overrides

    spec = load_spec(spec_path, [*dataset_overrides(dataset), *sets])
    result = lr_find(spec, min_lr, max_lr, steps)
    render_sweep.lr_find_result(result, as_json=as_json)


cli.add_command(sweep_cmd)
cli.add_command(lr_find_cmd)
