"""The ``bpcli`` command line: thin Click commands over the library.

Imports nothing heavy at module level, so ``bpcli --help`` is instant; each command imports
the library it calls when it runs.
"""

from __future__ import annotations

import sys

import click

from bpcli.cli import bench as _bench  # noqa: F401 - registers the command
from bpcli.cli import diagnose as _diagnose  # noqa: F401
from bpcli.cli import evaluate as _evaluate  # noqa: F401
from bpcli.cli import generate as _generate  # noqa: F401
from bpcli.cli import gradcheck_cmd as _gradcheck  # noqa: F401
from bpcli.cli import info as _info  # noqa: F401
from bpcli.cli import onnx_cmds as _onnx_cmds  # noqa: F401
from bpcli.cli import ops as _ops  # noqa: F401
from bpcli.cli import plot_cmd as _plot  # noqa: F401
from bpcli.cli import plugins as _plugins  # noqa: F401
from bpcli.cli import spec as _spec  # noqa: F401
from bpcli.cli import sweep_cmd as _sweep  # noqa: F401
from bpcli.cli import train as _train  # noqa: F401
from bpcli.cli.group import cli
from bpcli.errors import BpcliError


def main() -> None:
    from bpcli.plugins.manager import add_plugin_commands

    try:
        add_plugin_commands(cli)
    except BpcliError as e:
        click.echo(f"bpcli: {e}", err=True)
        sys.exit(2)
    cli(prog_name="bpcli")
