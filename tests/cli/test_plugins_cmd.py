"""``bpcli plugins`` and commands added by plugins."""

import json
import types

import click
from click.testing import CliRunner

from bpcli.cli import cli
from bpcli.plugins import manager


def test_plugins_lists_builtins_and_a_registered_plugin():
    mod = types.ModuleType("tiny")
    mod.bpcli_register_layers = lambda register: register("tiny_layer", object)
    manager.reset(extra_plugins=(("tiny", mod),), entry_points=False)
    try:
        result = CliRunner().invoke(cli, ["plugins", "--json"])
    finally:
        manager.reset(entry_points=False)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["tiny"]["parts"] == {"layer": ["tiny_layer"]}
    assert "conv2d" in rows["bpcli.builtins.layers"]["parts"]["layer"]
    assert rows["bpcli.builtins.layers"]["source"] == "built-in"


def test_a_plugin_can_add_a_command(monkeypatch):
    @click.command("hello")
    def hello():
        click.echo("hello from a plugin")

    mod = types.ModuleType("cmds")
    mod.bpcli_register_commands = lambda cli: cli.add_command(hello)
    pm = manager.make_manager(extra_plugins=(("cmds", mod),), entry_points=False, builtins=False)
    group = click.Group(commands=dict(cli.commands))
    pm.hook.bpcli_register_commands(cli=group)
    result = CliRunner().invoke(group, ["hello"])
    assert result.output.strip() == "hello from a plugin"
