"""Tracing: one forward pass recorded op by op, for the ONNX exporter.

An observer on ``Op.apply`` sees every primitive call, also those the tape does not record
(comparisons, argmax, ops on constants only); an observer on ``Module.__call__`` gives each
record the layer path it ran in (for error messages).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from bpcli.engine import op as op_module
from bpcli.engine.tensor import Tensor
from bpcli.nn import module as module_module
from bpcli.nn.module import Module


@dataclass(eq=False)
class Record:
    """One primitive call: its op name, attrs, input and output tensors, and the layer path."""

    name: str
    attrs: dict
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    path: str
    # the same call in the second trace (another batch size), when there is one
    twin: Record | None = field(default=None, repr=False)
    # the same call in a trace on other input values of the same shapes
    other: Record | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.name} (layer {self.path})" if self.path else self.name


@contextlib.contextmanager
def recording(model: Module | None):
    """Collect a Record for every ``Op.apply`` call made inside the block."""
    records: list[Record] = []
    names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
    stack: list[str] = []

    def on_apply(cls, inputs, attrs, out):
        outs = out if isinstance(out, tuple) else (out,)
        path = stack[-1] if stack else ""
        records.append(Record(cls.name, attrs, tuple(inputs), outs, path))

    def on_call(mod, entering):
        if entering:
            stack.append(names.get(id(mod), type(mod).__name__))
        else:
            stack.pop()

    op_module.observers.append(on_apply)
    module_module.call_observers.append(on_call)
    try:
        yield records
    finally:
        op_module.observers.remove(on_apply)
        module_module.call_observers.remove(on_call)


def flatten_outputs(out) -> list[Tensor]:
    """The tensors of a model's output (a tensor, or nested tuples/lists/dicts of them)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, tuple | list):
        return [t for o in out if o is not None for t in flatten_outputs(o)]
    return []
