"""``bpcli train``: train a model from a TOML spec into a run directory."""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path

import click

from bpcli.cli.group import cli
from bpcli.errors import BpcliError

# Each shortcut option and the spec field it overrides.
SHORTCUTS = {
    "epochs": "train.epochs",
    "lr": "optimizer.lr",
    "batch_size": "train.batch_size",
    "seed": "seed",
}


def overrides_of(options: dict, sets: tuple[str, ...]) -> list[str]:
    """The shortcut options as ``key.path=value`` strings, before ``--set`` ones (which win)."""
    out = []
    for opt, key in SHORTCUTS.items():
        value = options.get(opt)
        if value is None:
            continue
        flag = "--" + opt.replace("_", "-")
        if opt != "seed" and not 0 < value < math.inf:
            raise BpcliError(f"must be a number greater than 0, got {value}", where=flag)
        if opt == "seed" and value < 0:
            raise BpcliError(f"must be 0 or more, got {value}", where=flag)
        out.append(f"{key}={value!r}")
    return out + list(sets)


@click.command("train")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--epochs", type=int, help="Override train.epochs.")
@click.option("--lr", type=float, help="Override optimizer.lr.")
@click.option("--batch-size", type=int, help="Override train.batch_size.")
@click.option("--seed", type=int, help="Override seed (same seed + spec + machine: same numbers).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override any spec field; VALUE is a TOML value, e.g. --set train.clip_grad_norm=1.0. "
    "Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Run directory (default runs/<spec name>-<timestamp>).",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False),
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint, exactly where it stopped.",
)
@click.option("--overwrite", is_flag=True, help="Replace the run directory if it exists.")
@click.option(
    "--dataset",
    metavar="NAME|FILE",
    help="The registered dataset or data file (.npz, .csv, .txt, .idx, a folder) to train or "
    "fine-tune on, instead of the spec's (whose data.options are dropped).",
)
@click.option(
    "--freeze",
    "freeze",
    multiple=True,
    metavar="GLOB",
    help="SPEC.onnx only: keep the parameters whose names match fixed. Repeatable.",
)
@click.option(
    "--replace-head",
    type=int,
    metavar="N",
    help="SPEC.onnx only: a fresh N-class last Gemm/MatMul classifier.",
)
@click.option(
    "--diagnose",
    default="epoch",
    is_flag=False,
    flag_value="1",
    metavar="[N]",
    help="Gradient diagnostics (norms, update/weight ratio, dead/saturated units, flags with "
    "fixes) at the first step and each epoch end (the default); --diagnose=N also every N "
    "steps, --diagnose alone every step. See them with bpcli diagnose RUN_DIR.",
)
@click.option("--no-diagnose", is_flag=True, help="No gradient diagnostics.")
@click.option("--device", default="cpu", show_default=True, help="Only cpu is supported.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Threads for BLAS and Numba (default: all cores; 1 is faster for small models "
    "on a busy machine).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Data-parallel training on N processes of this machine (starts mpiexec; needs "
    "bpcli[mpi]). Same result as one process; on a cluster run mpiexec -n N bpcli train.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per epoch and a final one.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the final line.")
def train_cmd(
    spec_path: str,
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    seed: int | None,
    sets: tuple[str, ...],
    out: str | None,
    resume: str | None,
    overwrite: bool,
    dataset: str | None,
    freeze: tuple[str, ...],
    replace_head: int | None,
    diagnose: str,
    no_diagnose: bool,
    device: str,
    threads: int | None,
    workers: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train the model that SPEC describes and save it in a run directory.

    The run directory holds the resolved spec (spec.toml), metrics.jsonl (one line per
    epoch), manifest.json (seed, versions, data hash, command line) and the checkpoints
    'last' and 'best'. Ctrl-C stops after the current step and saves, so the run can be
    resumed with --resume. The --json final object holds test_loss, test_accuracy
    (classifiers) or test_perplexity (language models), best_epoch, run_dir, seconds and
    stopped_reason.

    \b
    Examples:
      bpcli train models/mlp-digits.toml
      bpcli train models/mlp-digits.toml --epochs 5 --lr 0.05 --seed 1
      bpcli train models/cnn-digits.toml --set train.clip_grad_norm=1.0 --out runs/cnn
      bpcli train models/mlp-digits.toml --resume runs/mlp-digits-20250101-120000
      bpcli train models/spirals.toml --json | jq .test_accuracy
      bpcli train model.onnx --dataset digits --freeze '0.*' --replace-head 10 --epochs 3

    SPEC may be an ONNX file: its graph is imported and fine-tuned (backprop runs through
    it) on --dataset, with a 20% test split; resume with RUN_DIR/spec.toml --resume RUN_DIR.

    Under mpiexec (or with --workers N) each global batch is split over the ranks and their
    gradients averaged; only rank 0 prints and writes.
    """
    args = dict(locals())
    world = mpi_world_size()
    if workers is not None and workers > 1 and world == 1:
        if not Path(spec_path).is_file():
            raise BpcliError("no such file", where=spec_path)
        from bpcli.dist.launch import launch

        sys.exit(launch(workers, sys.argv[1:]))
    if world > 1:
        from bpcli.dist.guard import run_rank

        run_rank(lambda par: _train(par, **args), threads)
    else:
        _train(None, **args)


def mpi_world_size() -> int:
    """The ranks of the MPI job this process belongs to, from the launcher's environment (1
    outside one), so a single process never imports mpi4py."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def _train(par, spec_path, epochs, lr, batch_size, seed, sets, out, resume, overwrite, dataset,
           freeze, replace_head, diagnose, no_diagnose, device, threads, workers, as_json,
           quiet) -> None:  # fmt: skip
    if device.lower() != "cpu":
        raise BpcliError(f"only cpu is supported (bpcli runs on numpy), got {device}", "--device")
    if as_json and quiet:
        raise BpcliError("choose one of --json and --quiet", where="--quiet")
    if resume and (out or overwrite):
        where = "--out" if out else "--overwrite"
        raise BpcliError("cannot be combined with --resume (the run directory is RUN_DIR)", where)
    overrides = overrides_of(
        {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}, sets
    )
    if not Path(spec_path).is_file():
        raise BpcliError("no such file", where=spec_path)
    every = None if no_diagnose else _diagnose_every(diagnose)

    from bpcli.app.spec.schema import load_spec
    from bpcli.app.training.loop import train
    from bpcli.cli import render_train

    if threads is not None and par is None:
        import bpcli

        bpcli.set_num_threads(threads)

    if par is not None and par.rank != 0:
        from bpcli.app.training.loop import Reporter

        reporter = Reporter()  # only rank 0 prints
    elif as_json:
        reporter = render_train.JsonReporter()
    elif quiet:
        reporter = render_train.QuietReporter()
    else:
        reporter = render_train.RichReporter()
    if spec_path.lower().endswith(".onnx"):
        from bpcli.app.model.onnx_files import onnx_spec

        spec = onnx_spec(spec_path, dataset, freeze, replace_head, overrides)
    elif freeze or replace_head is not None:
        flag = "--freeze" if freeze else "--replace-head"
        raise BpcliError("applies to an ONNX model (SPEC.onnx) only; set it in the spec", flag)
    else:
        from bpcli.data.sources import dataset_overrides

        spec = load_spec(spec_path, overrides=[*dataset_overrides(dataset), *overrides])
    # The NaN/Inf guard names the first non-finite gradient; numpy's overflow warnings on
    # the way there would only add noise to that one line.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"bpcli\.")
    try:
        result = train(
            spec, out_dir=out, resume=resume, overwrite=overwrite, reporter=reporter,
            argv=["bpcli", *sys.argv[1:]], diagnose=every, par=par,
        )  # fmt: skip
    except KeyboardInterrupt:
        # Interrupted before the first step (while building or loading data): nothing to save.
        click.echo("bpcli: interrupted before training started; nothing saved", err=True)
        sys.exit(130)
    _exit_for(result, reporter if par is None or par.rank == 0 else None)


def _diagnose_every(value: str) -> str | int:
    if value == "epoch":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise BpcliError(f"must be a number of steps >= 1 (or 'epoch'), got {value!r}",
                         "--diagnose")  # fmt: skip
    return n


def _exit_for(result, reporter) -> None:
    """Interrupted: exit 130 (the reporter has said how to resume); a failed run: exit 1 with
    its message on stderr (once)."""
    if result.stopped_reason == "interrupted":
        sys.exit(130)
    if not result.ok:
        message = result.message or result.stopped_reason
        if reporter is not None and message not in reporter.shown:
            click.echo(f"bpcli: train: {message}", err=True)
        sys.exit(1)


cli.add_command(train_cmd)
