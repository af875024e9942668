"""``bpcli plugins``: every loaded plugin and the parts it registers."""

from __future__ import annotations

import click

from bpcli.cli import cli


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per plugin.")
def plugins_cmd(as_json: bool) -> None:
    """List the built-in and installed plugins and what each registers.

    Third-party plugins are found through the ``bpcli`` entry-point group;
    BPCLI_PLUGINS (a comma list, or 'none') limits which of them load.

    \b
    Example:
      bpcli plugins
      BPCLI_PLUGINS=none bpcli plugins
    """
    from bpcli.app.plugins_info import plugin_report
    from bpcli.cli import render

    render.plugin_report(plugin_report(), as_json=as_json)


cli.add_command(plugins_cmd)
