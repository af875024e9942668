"""``bpcli ops``: the table of every primitive op (name, formula, ONNX mapping)."""

from __future__ import annotations

import click

from bpcli.cli.group import cli


@click.command("ops")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per op.")
def ops_cmd(as_json: bool) -> None:
    """List every op of the engine with its forward/backward formula and ONNX op type.

    \b
    Example:
      bpcli ops | less
    """
    from bpcli.app.info.ops_table import ops_table
    from bpcli.cli import render

    render.ops_table(ops_table(), as_json=as_json)


cli.add_command(ops_cmd)
