"""ModuleList, ModuleDict, ParameterList, ParameterDict: holders of submodules or parameters.

They follow torch.nn's containers: children named ``0``, ``1``, ... (a list) or by key (a
dict), so parameters are named ``layers.0.weight`` and state dicts move between bpcli and
torch unchanged. They have no forward of their own; the module that holds one calls its items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from bpcli.engine.ops.index import IndexOutOfRangeError
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn.module import Module, Parameter


class KeyNotFoundError(BpcliError, KeyError):
    """A key a dict container lacks: a KeyError too, so ``in``-style code and ``get`` work."""

    def __str__(self) -> str:  # KeyError would repr-quote the whole message
        return BpcliError.__str__(self)


class _Container(Module):
    # The items are the state; a container has no constructor options worth a config.
    def get_config(self) -> dict:
        return {}

    def extra_repr(self) -> str:
        return ""

    def forward(self, *args, **kwargs):
        raise BpcliError(
            "a container has no forward(): call its items from the module that holds it",
            type(self).__name__,
        )


def _index(container, idx, n: int) -> int:
    if not isinstance(idx, int | np.integer) or isinstance(idx, bool):
        raise BpcliError(f"index must be an int or a slice, got {type(idx).__name__}",
                         type(container).__name__)  # fmt: skip
    if not -n <= idx < n:
        raise IndexOutOfRangeError(f"index {idx} is out of range", type(container).__name__)
    return int(idx) % n


class ModuleList(_Container):
    """A list of modules (torch.nn.ModuleList); ``append``, ``extend``, ``insert``, ``pop``,
    indexing, slicing (a new ModuleList sharing the modules), ``+`` and ``len``."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _check(self, m) -> Module:
        if not isinstance(m, Module):
            raise BpcliError(f"{type(m).__name__} is not a Module", "ModuleList")
        return m

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[_index(self, idx, len(mods))]

    def __setitem__(self, idx: int, module: Module) -> None:
        i = _index(self, idx, len(self))
        self.add_module(str(i), self._check(module))

    def __delitem__(self, idx) -> None:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[_index(self, idx, len(mods))]
        self._renumber(mods)

    def _renumber(self, mods: list[Module]) -> None:
        # torch keeps the names 0..n-1 after a deletion or an insertion
        for k in list(self._modules):
            delattr(self, k)
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), self._check(module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if isinstance(modules, Module) and not hasattr(modules, "__iter__"):
            raise BpcliError("extend() takes an iterable of modules, not one Module", "ModuleList")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, self._check(module))
        self._renumber(mods)

    def pop(self, key: int | slice = -1):
        out = self[key]
        del self[key]
        return out


class ModuleDict(_Container):
    """An ordered dict of modules (torch.nn.ModuleDict): ``md[key]``, ``keys``, ``items``,
    ``values``, ``update``, ``pop``, ``in``; keys are strings, kept in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyNotFoundError(f"no module named {key!r}", "ModuleDict")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        for k in list(self._modules):
            delattr(self, k)

    def pop(self, key: str) -> Module:
        m = self[key]
        del self[key]
        return m

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        for k, m in _pairs(modules, "ModuleDict"):
            self[k] = m


def _pairs(items, where: str):
    """(key, value) pairs of a mapping, a ModuleDict/ParameterDict, or an iterable of pairs."""
    if isinstance(items, Mapping | ModuleDict | ParameterDict):
        return list(items.items())
    pairs = []
    for j, kv in enumerate(items):
        if not isinstance(kv, tuple | list) or len(kv) != 2:
            raise BpcliError(f"update() item {j} is not a (key, value) pair", where)
        pairs.append(tuple(kv))
    return pairs


def _as_parameter(value, where: str):
    # torch wraps a plain tensor in a Parameter; arrays are bpcli's tensors' data
    if value is None or isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor | np.ndarray):
        data = np.asarray(value)
        return Parameter(data, requires_grad=data.dtype.kind in "fc")
    raise BpcliError(f"{type(value).__name__} is not a Parameter or a tensor", where)


class ParameterList(_Container):
    """A list of parameters (torch.nn.ParameterList), named ``0``, ``1``, ...; a tensor or an
    array is wrapped in a Parameter as torch does."""

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        ps = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(ps[idx])
        return ps[_index(self, idx, len(ps))]

    def __setitem__(self, idx: int, param) -> None:
        i = _index(self, idx, len(self))
        self.register_parameter(str(i), _as_parameter(param, "ParameterList"))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(list(self._parameters.values()))

    def __iadd__(self, values: Iterable) -> ParameterList:
        return self.extend(values)

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values: Iterable) -> ParameterList:
        if isinstance(values, Tensor | np.ndarray):
            raise BpcliError("extend() takes an iterable of parameters, not one", "ParameterList")
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return ", ".join(f"({k}): Parameter of shape {tuple(p.shape)}"
                         for k, p in self._parameters.items() if p is not None)  # fmt: skip


class ParameterDict(_Container):
    """An ordered dict of parameters (torch.nn.ParameterDict); values are wrapped in a
    Parameter as torch does; ``keys``, ``items``, ``values``, ``update``, ``pop``, ``get``."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str):
        if key not in self._parameters:
            raise KeyNotFoundError(f"no parameter named {key!r}", "ParameterDict")
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))

    def __delitem__(self, key: str) -> None:
        self[key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._parameters))

    def __contains__(self, key) -> bool:
        return key in self._parameters

    def get(self, key: str, default=None):
        return self._parameters.get(key, default)

    def pop(self, key: str):
        p = self[key]
        del self[key]
        return p

    def clear(self) -> None:
        for k in list(self._parameters):
            delattr(self, k)

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def update(self, parameters) -> None:
        for k, v in _pairs(parameters, "ParameterDict"):
            self[k] = v

    def extra_repr(self) -> str:
        return ", ".join(f"({k}): Parameter of shape {tuple(p.shape)}"
                         for k, p in self._parameters.items() if p is not None)  # fmt: skip


__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList"]
