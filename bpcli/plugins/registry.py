"""Named registries of parts (layers, losses, ...), filled through the plugin hooks."""

from __future__ import annotations

import difflib
from typing import Any

from bpcli.errors import BpcliError


class Registry:
    """Parts of one kind by name, each remembering the plugin that registered it."""

    def __init__(self, kind: str):
        self.kind = kind  # "layer", "loss", ...
        self._items: dict[str, tuple[Any, str]] = {}

    def add(self, plugin: str, name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise BpcliError(f"{self.kind} names must be non-empty strings, got {name!r}", plugin)
        key = name.lower()
        if key in self._items:
            other = self._items[key][1]
            raise BpcliError(
                f"{self.kind} {name!r} is registered by both plugin {other!r} "
                f"and plugin {plugin!r}",
                "plugins",
            )
        self._items[key] = (obj, plugin)

    def get(self, name: str) -> Any:
        try:
            return self._items[name.lower()][0]
        except KeyError:
            raise BpcliError(self.unknown_message(name), self.kind) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), self._items, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"

    def plugin_of(self, name: str) -> str:
        return self._items[name.lower()][1]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items

    def __len__(self) -> int:
        return len(self._items)
