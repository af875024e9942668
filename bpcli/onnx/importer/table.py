"""The table the ONNX importer reads: (domain, op_type) -> a function that maps one node.

Each entry is ``fn(ctx, node, inputs) -> Tensor | tuple`` where ``inputs`` holds a Tensor per
node input (``None`` for an omitted optional one) and ``node`` a :class:`NodeView` whose
attributes are already decoded. The functions live in the ``ops/<family>.py`` modules and
compose engine ops, so backward runs through the imported graph. Values that need no gradient
(shapes, indices, masks) may be computed on plain numpy arrays and wrapped with ``const``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcli.engine import random as bprandom
from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

Importer = Callable[..., Any]


@dataclass(frozen=True)
class OpSpec:
    """How one ONNX op is imported: ``fn`` handles opsets ``since`` to ``until`` (inclusive)."""

    fn: Importer
    since: int = 1
    until: int | None = None
    check: Callable[[NodeView], str | None] | None = None  # reason it is unsupported, or None


IMPORTERS: dict[tuple[str, str], OpSpec] = {}


def register(*op_types: str, domain: str = "", since: int = 1, until: int | None = None,
             check=None):  # fmt: skip
    """Decorator: ``fn`` imports every op type named (plugins use the same call)."""

    def deco(fn: Importer) -> Importer:
        for t in op_types:
            old = IMPORTERS.get((domain, t))
            if old is not None and old.fn is not fn:  # two families claiming one op: a bug
                raise BpcliError(f"{domain or 'ai.onnx'}::{t} is imported by both "
                                 f"{old.fn.__module__}.{old.fn.__name__} and "
                                 f"{fn.__module__}.{fn.__name__}", "onnx importers")  # fmt: skip
            IMPORTERS[(domain, t)] = OpSpec(fn, since, until, check)
        return fn

    return deco


@dataclass
class NodeView:
    """One ONNX node, decoded once at load time."""

    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    opset: int
    fn: Importer | None = None
    index: int = 0
    state: dict = field(default_factory=dict)

    def where(self) -> str:
        return f"node {self.name or '#' + str(self.index)} ({self.op_type})"

    def attr(self, key: str, default=None):
        return self.attrs.get(key, default)

    def fail(self, msg: str) -> BpcliError:
        return BpcliError(msg, self.where())


class Context:
    """What an importer function may consult besides its node: opset, mode, the module."""

    def __init__(self, module, training: bool):
        self.module = module
        self.training = training
        self.scope = None  # the values by name of the graph running now (subgraphs look up)

    def rng(self) -> np.random.Generator:
        return bprandom.resolve(None)


# -- helpers shared by the families ---------------------------------------------------------


def arr(t: Tensor | None, node: NodeView, what: str = "input") -> np.ndarray:
    """The numpy array behind a value that must be known at run time (shape, axes, ...)."""
    if t is None:
        raise node.fail(f"the {what} is required")
    return t.data


def ints(t: Tensor | None) -> list[int] | None:
    return None if t is None else [int(v) for v in np.asarray(t.data).reshape(-1)]


def scalar(t: Tensor | None, default=None):
    if t is None or t.data.size == 0:
        return default
    return t.data.reshape(-1)[0].item()


def wrap(a) -> Tensor:
    """A constant (gradient-free) tensor around a numpy result."""
    return const(np.asarray(a))


def norm_axis(axis: int, ndim: int, node: NodeView) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise node.fail(f"axis {axis} is out of range for rank {ndim}")
    return axis % max(ndim, 1)
