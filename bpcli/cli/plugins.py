"""``bpcli plugins`` (list, the default) and ``bpcli plugins check``."""

from __future__ import annotations

import sys

import click

from bpcli.cli.group import cli


def _list(as_json: bool) -> None:
    from bpcli.app.info.plugins import plugin_report
    from bpcli.cli import render

    render.plugin_report(plugin_report(), as_json=as_json)


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per plugin.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the built-in and installed plugins and what each registers.

    Third-party plugins are found through the ``bpcli`` entry-point group;
    BPCLI_PLUGINS (a comma list, or 'none') limits which of them load.

    \b
    Example:
      bpcli plugins
      BPCLI_PLUGINS=none bpcli plugins
      bpcli plugins check
    """
    if ctx.invoked_subcommand is None:
        _list(as_json)


@plugins_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per plugin.")
def list_cmd(as_json: bool) -> None:
    """List the plugins and their parts (the same as plain ``bpcli plugins``)."""
    _list(as_json)


@plugins_cmd.command("check")
@click.option("--builtins", is_flag=True, help="Check the built-in parts too.")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(["layer", "loss", "optimizer", "schedule", "initializer",
                                 "dataset", "onnx_op"]),
              help="Only parts of this kind (repeatable).")  # fmt: skip
@click.option("--name", "names", multiple=True, help="Only the part of this name (repeatable).")
@click.option("--no-onnx", is_flag=True, help="Skip the ONNX export round trip of layers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per part.")
def check_cmd(builtins: bool, kinds, names, no_onnx: bool, as_json: bool) -> None:
    """Check every part the installed plugins register.

    Layers: float64 finite-difference gradient check on a small random input, and an ONNX
    export that onnxruntime runs and compares where the layer's ops can be exported.
    Losses: gradient check wrt their input. Optimizers: must lower a quadratic. Schedules,
    initialisers, datasets: build and produce finite values. A part says how to build and
    feed it with the class attributes example_config, example_input_shape and
    example_input_high. Exit status 1 when any part fails.

    \b
    Examples:
      bpcli plugins check
      bpcli plugins check --builtins --kind layer
    """
    from bpcli.app.info.plugin_check import check_plugins
    from bpcli.cli import render_check

    report = check_plugins(include_builtins=builtins, kinds=kinds, names=names,
                           onnx=not no_onnx)  # fmt: skip
    render_check.plugin_check_report(report, as_json=as_json)
    if not report.passed:
        sys.exit(1)


cli.add_command(plugins_cmd)
