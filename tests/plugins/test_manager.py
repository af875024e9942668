"""Plugin loading: registration, clashes, misspelled hooks, broken plugins, lookups."""

import types
from importlib import metadata

import pytest

from bpcli.errors import BpcliError
from bpcli.plugins import manager
from bpcli.plugins.hookspecs import hookimpl


def plugin(name, **hooks):
    mod = types.ModuleType(name)
    for k, v in hooks.items():
        setattr(mod, k, v)
    return mod


def layers(*names):
    def bpcli_register_layers(register):
        for n in names:
            register(n, object())

    return bpcli_register_layers


def test_registered_names_know_their_plugin():
    pm = manager.make_manager(
        (plugin("alpha", bpcli_register_layers=layers("swish", "mish")),), entry_points=False
    )
    regs = manager.build_registries(pm)
    assert {"swish", "mish"} <= set(regs["layer"].names())
    assert regs["layer"].plugin_of("swish") == "alpha"


def test_marked_hookimpl_works_too():
    @hookimpl
    def bpcli_register_losses(register):
        register("focal", object())

    pm = manager.make_manager(
        (plugin("beta", bpcli_register_losses=bpcli_register_losses),), entry_points=False
    )
    assert "focal" in manager.build_registries(pm)["loss"]


def test_name_clash_names_both_plugins_and_the_name():
    a = plugin("alpha", bpcli_register_layers=layers("swish"))
    b = plugin("beta", bpcli_register_layers=layers("Swish"))
    pm = manager.make_manager((a, b), entry_points=False)
    with pytest.raises(
        BpcliError, match=r"'Swish' is registered by both plugin 'alpha' and plugin 'beta'"
    ):
        manager.build_registries(pm)


def test_misspelled_hook_is_named():
    bad = plugin("gamma", bpcli_register_layer=layers("x"))
    with pytest.raises(BpcliError, match="bpcli_register_layer"):
        manager.make_manager((bad,), entry_points=False)


def test_unknown_name_suggests_close_matches():
    pm = manager.make_manager(
        (plugin("alpha", bpcli_register_layers=layers("spline2d", "spline1d")),), entry_points=False
    )
    reg = manager.build_registries(pm)["layer"]
    with pytest.raises(BpcliError, match=r"unknown layer .spline2.; did you mean .spline2d."):
        reg.get("spline2")


class FakeEP:
    def __init__(self, name, value, dist, load):
        self.name, self.value, self._load = name, value, load
        self.dist = types.SimpleNamespace(name=dist)

    def load(self):
        return self._load()


def test_broken_plugin_warns_and_others_load(monkeypatch, capsys):
    def boom():
        raise ImportError("No module named 'missing_dep'")

    good = plugin("good", bpcli_register_layers=layers("swish"))
    eps = [
        FakeEP("broken", "broken_pkg:plugin", "bpcli-broken", boom),
        FakeEP("good", "good_pkg:plugin", "bpcli-good", lambda: good),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    monkeypatch.setenv("BPCLI_PLUGINS", "")
    pm = manager.make_manager()
    err = capsys.readouterr().err
    assert "'broken' from distribution 'bpcli-broken'" in err and "missing_dep" in err
    assert err.count("\n") == 1
    assert "swish" in manager.build_registries(pm)["layer"]


def test_bpcli_plugins_env_limits_third_party(monkeypatch):
    good = plugin("good", bpcli_register_layers=layers("swish"))
    other = plugin("other", bpcli_register_layers=layers("mish"))
    eps = [
        FakeEP("good", "g:p", "bpcli-good", lambda: good),
        FakeEP("other", "o:p", "bpcli-other", lambda: other),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    monkeypatch.setenv("BPCLI_PLUGINS", "bpcli-good")
    names = manager.build_registries(manager.make_manager())["layer"].names()
    assert "swish" in names and "mish" not in names
    monkeypatch.setenv("BPCLI_PLUGINS", "none")
    names = manager.build_registries(manager.make_manager())["layer"].names()
    assert "swish" not in names
