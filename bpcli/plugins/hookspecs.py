"""The hooks a bpcli plugin can implement (pluggy project name ``bpcli``).

Every registry hook receives one callback, ``register(name, obj)``; names are lowercase snake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("bpcli")
hookimpl = pluggy.HookimplMarker("bpcli")

Register = Callable[[str, Any], None]


@hookspec
def bpcli_register_layers(register: Register) -> None:
    """Register layer classes (Module subclasses) by name, e.g. ``register("swish", Swish)``."""


@hookspec
def bpcli_register_losses(register: Register) -> None:
    """Register loss functions or Module classes by name."""


@hookspec
def bpcli_register_optimizers(register: Register) -> None:
    """Register optimizer classes by name."""


@hookspec
def bpcli_register_schedules(register: Register) -> None:
    """Register learning-rate schedule classes by name."""


@hookspec
def bpcli_register_initializers(register: Register) -> None:
    """Register initialiser functions ``init(tensor, **options)`` by name."""


@hookspec
def bpcli_register_datasets(register: Register) -> None:
    """Register dataset factories by name."""


@hookspec
def bpcli_register_onnx_ops(register: Register) -> None:
    """Register ONNX importers and exporters for ops bpcli lacks (built-in ones take precedence).

    - ``register("OpType", fn)`` (``"domain::OpType"`` for a custom domain; names match
      case-insensitively): import nodes of that type with ``fn(ctx, node, inputs) -> Tensor |
      tuple``, ``node`` a ``bpcli.onnx.importer.table.NodeView`` (decoded ``attrs``,
      ``opset``),
      ``inputs`` one Tensor per node input (None if omitted); compose engine ops so backward
      runs through it. Pass an ``OpSpec(fn, since=, until=, check=)`` to limit the opsets.
    - ``register("export:<engine op name>", emit)``: export that engine op with
      ``emit(ctx, rec, ins) -> output name(s)``, calling ``ctx.node(op_type, inputs, **attrs)``
      (``bpcli.onnx.exporter.context.ExportContext``; ``rec.attrs`` are the op's attrs, ``ins``
      the ONNX names of its inputs). An op class whose ``onnx`` names an ONNX type and that has
      no attrs needs no emitter: it is written as one node of that type.
    """


@hookspec
def bpcli_register_commands(cli: Any) -> None:
    """Add Click commands to the ``bpcli`` group: ``cli.add_command(cmd)``."""


@hookspec
def bpcli_on_train_start(run: Any) -> None:
    """Called once before the first epoch of a training run."""


@hookspec
def bpcli_on_epoch_end(run: Any, epoch: int, metrics: dict) -> None:
    """Called after each epoch with that epoch's metrics."""


@hookspec
def bpcli_on_train_end(run: Any) -> None:
    """Called once after training ends (also after early stopping or Ctrl-C)."""
