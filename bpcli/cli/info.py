"""``bpcli info``: the layers of a model, their output shapes, parameters and FLOPs."""

from __future__ import annotations

from pathlib import Path

import click

from bpcli.cli.group import cli
from bpcli.errors import BpcliError


@click.command("info")
@click.argument("target", metavar="SPEC|CHECKPOINT", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a spec field first (SPEC only). Repeatable.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per layer and totals.")
def info_cmd(target: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Show the model of a spec (.toml) or a checkpoint (.npz or run directory).

    One row per layer: name, type, output shape (per sample), parameter count and
    forward FLOPs per sample (a multiply-add counts as 2), then the totals.

    \b
    Examples:
      bpcli info models/cnn-digits.toml
      bpcli info runs/mlp-digits-20250101-120000 --json
    """
    from bpcli.app.info.summary import summarize
    from bpcli.cli import render_train

    built, name = _model_of(target, overrides)
    summary = summarize(built.model, built.input_shape)
    render_train.model_summary(summary, as_json=as_json, name=name)


def _model_of(target: str, overrides: tuple[str, ...]):
    """The built model of a spec, or of a checkpoint with its parameters loaded."""
    if Path(target).suffix.lower() == ".toml":
        from bpcli.app.model.build import build
        from bpcli.app.spec.schema import load_spec

        spec = load_spec(target, overrides=overrides)
        return build(spec, data=False), spec.name
    if overrides:
        raise BpcliError("applies to a spec, not a checkpoint", where="--set")
    from bpcli.app.training.evaluate import restore

    built, ckpt, _ = restore(target, data=False)
    return built, ckpt["spec"].get("name", "")


cli.add_command(info_cmd)
