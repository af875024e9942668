"""``bpcli gradcheck``: float64 finite-difference check of a model's gradients."""

from __future__ import annotations

import sys

import click

from bpcli.cli.group import cli


@click.command("gradcheck")
@click.argument("source", metavar="SPEC|CHECKPOINT|MODEL.onnx", type=click.Path(exists=True))
@click.option("--layers", "layers", multiple=True, metavar="GLOB",
              help="Check only parameters whose name, layer path or layer type matches "
                   "(repeatable), e.g. --layers '0.*' --layers conv2d.")  # fmt: skip
@click.option("--eps", type=float, default=1e-6, show_default=True, help="Finite-difference step.")
@click.option("--atol", type=float, default=1e-6, show_default=True, help="Absolute tolerance.")
@click.option("--rtol", type=float, default=1e-4, show_default=True, help="Relative tolerance.")
@click.option("--batch", type=int, default=4, show_default=True, help="Samples in the batch.")
@click.option(
    "--directions",
    type=int,
    default=3,
    show_default=True,
    help="Random directions per tensor larger than --full-below elements.",
)
@click.option("--full-below", type=int, default=64, show_default=True,
              help="Tensors with at most this many elements are checked coordinate by "
                   "coordinate.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dataset", metavar="NAME|FILE",
              help="SPEC only: take the batch from this dataset or data file.")
@click.option("--per-tensor", is_flag=True, help="One row per tensor instead of per layer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def gradcheck_cmd(source, layers, eps, atol, rtol, batch, directions, full_below, seed,
                  dataset, per_tensor, as_json) -> None:  # fmt: skip
    """Compare the engine's gradients with float64 central finite differences.

    A copy of the model is cast to float64. L is the spec's loss on a small batch of its
    training data (the sum of outputs times fixed random weights for ONNX files). Small
    tensors are checked coordinate by coordinate, large ones along random directions. A check
    passes when |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|). Exit status
    1 when any check fails.

    \b
    Examples:
      bpcli gradcheck models/mlp-digits.toml
      bpcli gradcheck runs/cnn-digits-20250101-120000 --layers 'conv*'
      bpcli gradcheck model.onnx --json
    """
    from bpcli.app.experiments.gradcheck import gradcheck_source
    from bpcli.cli import render_check

    report = gradcheck_source(source, layers=layers, batch=batch, seed=seed, dataset=dataset,
                              eps=eps,
                              atol=atol, rtol=rtol, directions=directions,
                              full_below=full_below)  # fmt: skip
    render_check.gradcheck_report(report, per_tensor=per_tensor, as_json=as_json)
    if not report.passed:
        sys.exit(1)


cli.add_command(gradcheck_cmd)
