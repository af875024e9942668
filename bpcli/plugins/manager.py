"""Loading plugins: the built-ins from DEFAULT_PLUGINS, third parties from entry points.

Third-party plugins are found in the ``bpcli`` entry-point group and loaded one by one, so a
broken one is named in a warning and the others still load. ``BPCLI_PLUGINS`` (a comma list
of entry-point or distribution names, or ``none``) limits which third-party plugins load.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata

import pluggy

from bpcli.errors import BpcliError
from bpcli.plugins import hookspecs
from bpcli.plugins.registry import Registry

# The built-in parts, registered through the same hooks as any third-party plugin.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "bpcli.builtins.layers",
    "bpcli.builtins.losses",
    "bpcli.builtins.optimizers",
    "bpcli.builtins.schedules",
    "bpcli.builtins.initializers",
    "bpcli.builtins.datasets",
)

REGISTRY_HOOKS = {
    "layer": "bpcli_register_layers",
    "loss": "bpcli_register_losses",
    "optimizer": "bpcli_register_optimizers",
    "schedule": "bpcli_register_schedules",
    "initializer": "bpcli_register_initializers",
    "dataset": "bpcli_register_datasets",
    "onnx_op": "bpcli_register_onnx_ops",
}

_manager: pluggy.PluginManager | None = None
_registries: dict[str, Registry] | None = None
warnings: list[str] = []  # one line per plugin that failed to load
sources: dict[str, str] = {}  # plugin name -> "distribution version" of third-party plugins


class _Manager(pluggy.PluginManager):
    """Treats every ``bpcli_*`` function of a plugin as a hook implementation, marked or not,
    so a misspelled hook name is reported instead of silently ignored (as pytest does)."""

    def parse_hookimpl_opts(self, plugin, name):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("bpcli_") and callable(getattr(plugin, name, None)):
            opts = {}
        return opts


def _allowed() -> set[str] | None:
    value = os.environ.get("BPCLI_PLUGINS")
    if value is None or value.strip() == "":
        return None
    if value.strip().lower() == "none":
        return set()
    return {v.strip() for v in value.split(",") if v.strip()}


def _warn(line: str) -> None:
    warnings.append(line)
    print(f"bpcli: warning: {line}", file=sys.stderr)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed()
    for ep in metadata.entry_points(group="bpcli"):
        dist = ep.dist.name if ep.dist else "?"
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        try:
            plugin = ep.load()
        except Exception as e:
            _warn(f"plugin {ep.name!r} from distribution {dist!r} ({ep.value}) failed to load: "
                  f"{type(e).__name__}: {e}")  # fmt: skip
            continue
        if pm.is_registered(plugin) or pm.get_plugin(ep.name) is not None:
            continue
        _register(pm, plugin, ep.name)
        sources[ep.name] = f"{dist} {getattr(ep.dist, 'version', '')}".strip()


def _register(pm: pluggy.PluginManager, plugin, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except ValueError as e:
        raise BpcliError(str(e), f"plugin {name}") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        pm.unregister(plugin)
        raise BpcliError(f"{e} (misspelled hook name?)", f"plugin {name}") from None


def make_manager(
    extra_plugins: tuple = (), entry_points: bool = True, builtins: bool = True
) -> pluggy.PluginManager:
    """A fresh manager with the built-ins, ``extra_plugins`` (objects or (name, object))
    and, unless disabled, the installed third-party plugins."""
    pm = _Manager("bpcli")
    pm.add_hookspecs(hookspecs)
    for modname in DEFAULT_PLUGINS if builtins else ():
        _register(pm, importlib.import_module(modname), modname)
    for item in extra_plugins:
        name, plugin = (
            item if isinstance(item, tuple) else (getattr(item, "__name__", repr(item)), item)
        )
        _register(pm, plugin, name)
    if entry_points:
        _load_entry_points(pm)
    return pm


def build_registries(pm: pluggy.PluginManager) -> dict[str, Registry]:
    """Call every registry hook plugin by plugin, so each name knows who registered it."""
    registries = {}
    for kind, hook_name in REGISTRY_HOOKS.items():
        reg = Registry(kind)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            impl.function(
                register=lambda name, obj, _p=impl.plugin_name, _r=reg: _r.add(_p, name, obj)
            )
        registries[kind] = reg
    return registries


def get_manager() -> pluggy.PluginManager:
    global _manager
    if _manager is None:
        _manager = make_manager()
    return _manager


def registries() -> dict[str, Registry]:
    global _registries
    if _registries is None:
        _registries = build_registries(get_manager())
    return _registries


def registry(kind: str) -> Registry:
    return registries()[kind]


def reset(extra_plugins: tuple = (), entry_points: bool = True) -> None:
    """Rebuild the manager and registries (tests register plugins this way)."""
    global _manager, _registries
    warnings.clear()
    _manager = make_manager(extra_plugins, entry_points)
    _registries = None


def add_plugin_commands(cli) -> None:
    """Let third-party plugins add Click commands. Only entry points are loaded here (the
    built-in commands are the CLI's own), so ``bpcli --help`` stays fast."""
    pm = make_manager(builtins=False)
    pm.hook.bpcli_register_commands(cli=cli)
