"""Sequential and Residual: composing layers."""

from __future__ import annotations

from collections import OrderedDict

from bpcli.errors import BpcliError
from bpcli.nn.module import Module


class Sequential(Module):
    """Layers applied in order; children are named ``0``, ``1``, ... (or by an OrderedDict)."""

    def __init__(self, *layers: Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            items = list(layers[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(layers)]
        for name, m in items:
            if not isinstance(m, Module):
                raise BpcliError(f"item {name} is a {type(m).__name__}, not a Module", "Sequential")
            self.add_module(name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, m: Module) -> Sequential:
        self.add_module(str(len(self._modules)), m)
        return self

    def get_config(self) -> dict:
        return {}


class Residual(Module):
    """y = body(x) + shortcut(x); the shortcut is the identity unless given (e.g. a 1x1 conv)."""

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + skip

    def get_config(self) -> dict:
        return {}


LAYERS = {"sequential": Sequential, "residual": Residual}
