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
@click.option(
    "--workers",
    type=click.IntRange(min=2),
    default=None,
    metavar="N",
    help="Instead: data-parallel training (bpcli[mpi]): samples/s of 1 process x 1 thread, "
    "1 x N threads and N ranks x 1 thread, allreduce time per step, scaling efficiency.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per workload.")
def bench_cmd(
    repeat: int,
    threads: int | None,
    only: tuple[str, ...],
    startup: bool,
    diag_rounds: int | None,
    workers: int | None,
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
    if workers is not None:
        _data_parallel(workers, only, as_json)
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


def _data_parallel(workers: int, only: tuple[str, ...], as_json: bool) -> None:
    import json

    from rich.table import Table

    from bpcli.cli import render
    from bpcli.dist.bench import run

    rows = run(workers, only=only or None)
    if as_json:
        for r in rows:
            click.echo(json.dumps({**r.__dict__, "speedup": r.speedup(workers),
                                   "efficiency": r.efficiency(workers)}))  # fmt: skip
        return
    n = workers
    table = Table(title=f"samples/s of a warm epoch: processes x threads ({n} workers)",
                  caption=f"gain: {n}x1 over 1x1, eff.: gain / {n}")  # fmt: skip
    table.add_column("workload", no_wrap=True)
    for col in ("params", "1x1", f"1x{n}", f"{n}x1", "gain", "eff.", "allreduce", "GB/s"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        s = r.samples_per_s
        table.add_row(r.workload, f"{r.n_params / 1e6:.2f}M", f"{s['1x1']:,.0f}",
                      f"{s[f'1x{n}']:,.0f}", f"{s[f'{n}x1']:,.0f}", f"{r.speedup(n):.2f}x",
                      f"{r.efficiency(n):.0%}", f"{r.allreduce_ms:.2f} ms",
                      f"{r.allreduce_gb_s:.2f}")  # fmt: skip
    out = render.console()
    out.width = max(out.width, 100)  # piped output is 80 columns: the numbers would be cut
    out.print(table)


cli.add_command(bench_cmd)
