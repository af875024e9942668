"""What each loaded plugin registers: the data behind ``bpcli plugins``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class PluginInfo:
    name: str
    source: str  # "built-in" or "distribution version"
    parts: dict[str, list[str]] = field(default_factory=dict)  # kind -> names

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PluginReport:
    plugins: list[PluginInfo]
    warnings: list[str]


def plugin_report() -> PluginReport:
    from bpcli.plugins import manager

    regs = manager.registries()
    pm = manager.get_manager()
    infos = {}
    for name, _plugin in pm.list_name_plugin():
        source = "built-in" if name in manager.DEFAULT_PLUGINS else manager.sources.get(name, "")
        infos[name] = PluginInfo(name, source or "registered in code")
    for kind, reg in regs.items():
        for part in reg.names():
            info = infos.get(reg.plugin_of(part))
            if info is not None:
                info.parts.setdefault(kind, []).append(part)
    return PluginReport(list(infos.values()), list(manager.warnings))
