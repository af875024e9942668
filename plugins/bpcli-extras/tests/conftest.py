"""Tests of the bpcli-extras plugin. Unlike bpcli's own suite, these want third-party plugins
on: the fixture below loads the installed entry points and restores the manager after."""

import pytest
from bpcli.plugins import manager


@pytest.fixture
def plugins_on(monkeypatch):
    """The plugin manager rebuilt with every installed plugin (BPCLI_PLUGINS unset)."""
    monkeypatch.delenv("BPCLI_PLUGINS", raising=False)
    manager.reset()
    yield manager
    monkeypatch.undo()
    manager.reset()
