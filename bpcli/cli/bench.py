"""``bpcli bench``: training-step timings against PyTorch in the same process."""

from __future__ import annotations

import click

from bpcli.cli import cli


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per workload.")
def bench_cmd(
    repeat: int, threads: int | None, only: tuple[str, ...], startup: bool, as_json: bool
) -> None:
    """Time one training step of standard workloads in bpcli and, when installed, PyTorch.

    mlp-digits-epoch (one epoch), lstm and transformer (one step) are built from
    models/mlp-digits.toml, char-lstm.toml and tiny-transformer.toml through the library.

    \b
    Example:
      bpcli bench --only mlp --repeat 100
      bpcli bench --only lstm --only transformer --no-startup
    """
    from bpcli.app import bench
    from bpcli.cli import render

    results = bench.run(repeat=repeat, threads=threads, only=only or None)
    start = bench.startup() if startup else None
    render.bench_results(results, start, as_json=as_json)


cli.add_command(bench_cmd)
