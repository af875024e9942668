"""``bpcli bench``: training-step timings against PyTorch in the same process."""

from __future__ import annotations

import click

from bpcli.cli.group import cli


@click.command("bench")
@click.option(
    "--repeat",
    default=50,
    show_default=True,
    help="Timed steps per workload (slow workloads time a fraction of them).",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="Threads for both engines (default: all).",
)
@click.option(
    "--only",
    multiple=True,
    help="Run only these workloads (mlp, cnn, mlp-digits-epoch, lstm, transformer); repeatable.",
)
@click.option(
    "--startup/--no-startup",
    default=True,
    show_default=True,
    help="Also time import + first step in fresh processes, cold and warm Numba cache.",
)
@click.option(
    "--diagnostics",
    "diag_rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Instead: what gradient diagnostics cost on mlp-digits (off / epoch ends / every "
    "step), over N shuffled rounds of 5-epoch runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per workload.")
def bench_cmd(
    repeat: int,
    threads: int | None,
    only: tuple[str, ...],
    startup: bool,
    diag_rounds: int | None,
    as_json: bool,
) -> None:
    """Time one training step of standard workloads in bpcli and, when installed, PyTorch.

    mlp-digits-epoch (one epoch), lstm and transformer (one step) are built from
    models/mlp-digits.toml, char-lstm.toml and tiny-transformer.toml through the library.

    \b
    Example:
      bpcli bench --only mlp --repeat 100
      bpcli bench --only lstm --only transformer --no-startup
      bpcli bench --diagnostics 10 --threads 1
    """
    from bpcli.app.bench import runner as bench
    from bpcli.cli import render

    if diag_rounds is not None:
        _diagnostics_overhead(diag_rounds, threads, as_json)
        return

    results = bench.run(repeat=repeat, threads=threads, only=only or None)
    start = bench.startup() if startup else None
    render.bench_results(results, start, as_json=as_json)


def _diagnostics_overhead(rounds: int, threads: int | None, as_json: bool) -> None:
    import contextlib
    import io

    import bpcli
    from bpcli.app.bench.diagnostics import measure
    from bpcli.cli import render, render_train

    if threads is not None:
        bpcli.set_num_threads(threads)
    reporters = {  # the reporters `bpcli train` uses: what they do per check point counts too
        "terminal": lambda: render_train.RichReporter(render.console_to(io.StringIO())),
        "json": render_train.JsonReporter,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # the JSON reporter prints its lines
        rows = measure(reporters, rounds=rounds)
    render.diag_overhead(rows, as_json=as_json)


cli.add_command(bench_cmd)
