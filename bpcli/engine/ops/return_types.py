"""Named-tuple results of the ops that return ``(values, indices)``, as ``torch.return_types``.

One type per op name (``return_type("sort")`` is always the same class), so ``v, i = sort(x)``,
``sort(x).values`` and ``isinstance(r, tuple)`` all work as in torch.
"""

from __future__ import annotations

from collections import namedtuple

_TYPES: dict[tuple[str, tuple[str, ...]], type] = {}


def return_type(name: str, fields: tuple[str, ...] = ("values", "indices")) -> type:
    """The named-tuple class ``name(values, indices)`` (or other ``fields``), made once."""
    key = (name, tuple(fields))
    cls = _TYPES.get(key)
    if cls is None:
        cls = namedtuple(name, fields)
        # NOTE: found as an attribute of this module, so results pickle (checkpoints, workers)
        cls.__module__ = __name__
        _TYPES[key] = cls
        if fields == ("values", "indices"):
            globals()[name] = cls
    return cls


def values_indices(name: str, values, indices):
    """``return_type(name)(values, indices)``."""
    return return_type(name)(values, indices)
