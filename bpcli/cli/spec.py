"""``bpcli init-spec`` writes a commented starter spec; ``bpcli spec`` shows one resolved."""

from __future__ import annotations

from pathlib import Path

import click

from bpcli.cli.group import cli
from bpcli.errors import BpcliError

STARTER = "starter.toml"


def starter_text() -> str:
    from importlib.resources import files

    return files("bpcli.app.spec").joinpath("templates", STARTER).read_text(encoding="utf-8")


@click.command("init-spec")
@click.argument("path", default="model.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_spec_cmd(path: str, force: bool) -> None:
    """Write a commented starter spec to PATH (default model.toml) to edit and train.

    The starter trains a small MLP on the bundled 8x8 digits; its comments list every
    section and the registered names each field accepts.

    \b
    Examples:
      bpcli init-spec                      writes ./model.toml
      bpcli init-spec specs/mine.toml
      bpcli train model.toml --epochs 3
    """
    target = Path(path)
    if target.exists() and not force:
        raise BpcliError("exists; pass --force to overwrite it", where=path)
    if not target.parent.is_dir():
        raise BpcliError("no such directory", where=str(target.parent))
    try:
        target.write_text(starter_text(), encoding="utf-8")
    except OSError as e:
        raise BpcliError(f"cannot write: {e.strerror}", where=path) from None
    click.echo(f"wrote {path}; train it with: bpcli train {path}")


@click.command("spec")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option(
    "--resolved",
    is_flag=True,
    help="Fill in every default (the only form for now; kept for clarity in scripts).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override one field before resolving; VALUE is a TOML value. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the resolved spec as JSON.")
def spec_cmd(spec_path: str, resolved: bool, overrides: tuple[str, ...], as_json: bool) -> None:
    """Print SPEC with every default filled in, after checking every field.

    The output is itself a valid spec: training it is the same as training SPEC.

    \b
    Examples:
      bpcli spec --resolved models/mlp-digits.toml
      bpcli spec --resolved models/mlp-digits.toml --set optimizer.lr=0.05
    """
    import json

    from bpcli.app.spec.schema import load_spec

    spec = load_spec(_existing(spec_path), overrides=overrides)
    if as_json:
        click.echo(json.dumps(spec.to_dict(), indent=2, default=str))
    else:
        click.echo(spec.to_toml(), nl=False)


def _existing(path: str) -> str:
    if not Path(path).is_file():
        raise BpcliError("no such file", where=path)
    return path


cli.add_command(init_spec_cmd)
cli.add_command(spec_cmd)
