"""ONNX import: a ModelProto becomes an :class:`OnnxModule` whose forward interprets the graph
with engine ops, so ``loss.backward()`` runs through the imported model itself.

Every node is checked before anything is built: one error lists all unsupported nodes, those
inside subgraphs too (named by their path, ``Loop_0/body/Add_3``). Float initializers become
Parameters named as in the ONNX file (BatchNormalization's running statistics become buffers);
integer initializers stay constants. Reading, checking and running the nodes is
:mod:`bpcli.onnx.importer.graph`'s job.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.version_converter
from onnx import numpy_helper

from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn.module import Module, Parameter
from bpcli.onnx.importer import ops as _families  # noqa: F401  (importing fills IMPORTERS)
from bpcli.onnx.importer.graph import (
    Subgraph,
    run_nodes,
    support_reason,
    toposort,
    type_text,
    unsupported_nodes,
    value_info,
    views_of,
    walk,
)
from bpcli.onnx.importer.minifloat import is_narrow_float
from bpcli.onnx.importer.table import Context, NodeView

__all__ = [
    "ImportSummary",
    "OnnxLanguageModel",
    "OnnxModule",
    "Subgraph",
    "load",
    "run_nodes",
    "support_reason",
    "unsupported_nodes",
    "walk",
]

MIN_OPSET = 7  # older models go through onnx.version_converter first
CONVERT_TO = 13
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN"}


@dataclass
class ImportSummary:
    """What ``load`` built; ``str()`` renders it as plain text."""

    source: str
    producer: str
    opset: int
    converted_from: int | None
    inputs: list[tuple[str, tuple, str]]
    outputs: list[tuple[str, tuple, str]]
    op_counts: dict[str, int]
    n_params: int
    trainable: list[str]
    frozen: list[str]
    buffers: list[str]
    untied: list[str] = field(default_factory=list)
    no_gradient_ops: list[str] = field(default_factory=list)
    upcast: int = 0  # narrow-float tensors and types rewritten to float32 (``load(upcast=)``)
    narrow_weights: int = 0  # float16/bfloat16 initializers left as constants

    def __str__(self) -> str:
        conv = f" (converted from {self.converted_from})" if self.converted_from else ""
        lines = [f"{self.source}: {self.producer or 'unknown producer'}, opset {self.opset}{conv}"]
        if self.upcast:
            lines.append(f"float16/bfloat16 upcast to float32 for training ({self.upcast} "
                         f"tensors and types)")  # fmt: skip
        for title, rows in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            lines += [f"  {n} {list(s)} {d}" for n, s, d in rows]
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(self.op_counts.items()))
        lines.append(f"ops ({sum(self.op_counts.values())}): {ops}")
        lines.append(f"parameters: {self.n_params:,} in {len(self.trainable) + len(self.frozen)} "
                     f"tensors ({len(self.trainable)} trainable, {len(self.frozen)} frozen), "
                     f"{len(self.buffers)} buffers")  # fmt: skip
        if self.narrow_weights:
            lines.append(f"{self.narrow_weights} float16/bfloat16 initializers are constants "
                         "here; `bpcli train` (load(upcast=True)) trains them in "
                         "float32")  # fmt: skip
        if self.untied:
            lines.append("untied shared initializers: " + ", ".join(self.untied))
        if self.no_gradient_ops:
            lines.append("ops with no gradient: " + ", ".join(self.no_gradient_ops))
        return "\n".join(lines)


# -- reading and checking ---------------------------------------------------------------------


def _read(path_or_model) -> tuple[onnx.ModelProto, str]:
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, path_or_model.graph.name or "<model>"
    path = os.fspath(path_or_model)
    if not os.path.isfile(path):
        raise BpcliError("no such file", path)
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf/external-data errors have no common base class
        raise BpcliError(f"not a readable ONNX model ({type(e).__name__}: {e})", path) from None
    if not model.graph.node and not model.graph.output:
        raise BpcliError("not an ONNX model (empty graph)", path)
    return model, path


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    out = {}
    for o in model.opset_import:
        out["" if o.domain in ("", "ai.onnx") else o.domain] = o.version
    return out


# -- the module ------------------------------------------------------------------------------


class OnnxModule(Module):
    """An imported ONNX graph. Parameters keep their ONNX names (dots included)."""

    def __init__(self, model: onnx.ModelProto, source: str = "<model>", trainable: bool = True,
                 untie: bool = True, converted_from: int | None = None):  # fmt: skip
        super().__init__()
        g = model.graph
        opsets = _opsets(model)
        views = views_of(model, opsets)
        bad = unsupported_nodes(views)
        if bad:
            raise BpcliError(f"{len(bad)} unsupported node(s):\n  " + "\n  ".join(bad), source)
        if any(v.op_type == "Gradient" for _, v in walk(views)):
            untie = False  # untying would split one x of a Gradient node into several weights
        inits = {t.name: t for t in g.initializer}
        aliases = _alias_identities(views, inits) if untie else {}
        views = [v for v in views if v.outputs[0] not in aliases] if aliases else views
        stats = {v.inputs[i] for v in views if v.op_type == "BatchNormalization"
                 for i in (3, 4) if len(v.inputs) > i}  # fmt: skip
        untied = _untie(views, inits) if untie else {}
        consts: dict[str, Tensor] = {}
        for name, t in inits.items():
            a = numpy_helper.to_array(t)
            if name in stats:
                self._buffers[name] = Tensor(a.copy())
            elif a.dtype in (np.float32, np.float64):
                self._parameters[name] = Parameter(a.copy(), requires_grad=trainable)
            else:
                consts[name] = const(a)
        for name, (orig, _) in untied.items():
            self._parameters[name] = Parameter(self._parameters[orig].data.copy(),
                                               requires_grad=trainable)  # fmt: skip
        object.__setattr__(self, "_consts", consts)
        self._inputs = [value_info(vi) for vi in g.input if vi.name not in inits]
        self._outputs = [value_info(vi) for vi in g.output]
        self._type_text = {vi.name: type_text(vi.type) for vi in [*g.input, *g.output]}
        known = set(inits) | set(untied) | {n for n, _, _ in self._inputs}
        object.__setattr__(self, "_nodes", toposort(views, known, source))
        self._nograd: list[str] = []
        self._info = dict(source=source, producer=f"{model.producer_name} {model.producer_version}"
                          .strip(), opset=opsets.get("", 0), converted_from=converted_from,
                          untied=[f"{k} (copy of {o})" for k, o in aliases.items()]
                          + [f"{k} (copy of {o} for {u})" for k, (o, u) in untied.items()],
                          op_counts=dict(Counter(v.op_type for _, v in walk(views))),
                          narrow_weights=sum(is_narrow_float(c.dtype)
                                             for c in consts.values()))  # fmt: skip

    # -- hooks the op importers call ------------------------------------------------------------
    def _note_nograd(self, node: NodeView) -> None:
        if node.op_type not in self._nograd:
            self._nograd.append(node.op_type)

    def _update_buffer(self, name: str, value: np.ndarray) -> None:
        buf = self._buffers.get(name)
        if buf is not None:
            buf.data[...] = value
            buf._version += 1

    # -- running ---------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [n for n, _, _ in self._inputs]

    def _bind(self, inputs) -> dict[str, Any]:
        if len(inputs) != len(self._inputs):
            names = ", ".join(self.input_names)
            raise BpcliError(f"expected {len(self._inputs)} input(s) ({names}), got {len(inputs)}",
                             "onnx model")  # fmt: skip
        env = {}
        for (name, shape, dtype), x in zip(self._inputs, inputs, strict=True):
            strings = isinstance(x, Tensor) and x.dtype.kind == "U"
            if x is None or isinstance(x, list | dict) or strings:
                env[name] = x  # an optional, a sequence, a map or strings: no tensor checks
                continue
            t = x if isinstance(x, Tensor) else const(np.asarray(x))
            if dtype is not None and t.dtype != dtype:
                raise BpcliError(f"expected dtype {dtype}, got {t.dtype}", f"input {name}")
            if shape is not None and (
                len(shape) != t.ndim
                or any(isinstance(s, int) and s and s != n for s, n in zip(shape, t.shape))
            ):
                want = [s if isinstance(s, int) and s else "?" for s in shape]
                raise BpcliError(f"expected shape {want}, got {list(t.shape)}", f"input {name}")
            env[name] = t
        return env

    def forward(self, *inputs):
        env: dict[str, Tensor] = dict(self._consts)
        env.update(self._parameters)
        env.update(self._buffers)
        env.update(self._bind(inputs))
        run_nodes(Context(self, self.training), self._nodes, env)
        res = tuple(env[n] for n, _, _ in self._outputs)
        return res[0] if len(res) == 1 else res

    def summary(self) -> ImportSummary:
        named = list(self.named_parameters())
        return ImportSummary(
            inputs=[(n, s or (), self._type_text[n]) for n, s, _ in self._inputs],
            outputs=[(n, s or (), self._type_text[n]) for n, s, _ in self._outputs],
            n_params=sum(p.numel() for _, p in named),
            trainable=[n for n, p in named if p.requires_grad],
            frozen=[n for n, p in named if not p.requires_grad],
            buffers=list(self._buffers), no_gradient_ops=list(self._nograd), **self._info,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{self._info['source']!r}, {len(self._nodes)} nodes"


class OnnxLanguageModel(OnnxModule):
    """A token ids -> logits graph run as bpcli's language models are: ``model(x, state)``
    gives ``(logits, None)``. The graph's first output is the logits; state outputs (a
    recurrent graph exported with them) are not carried, so every BPTT window starts from the
    state the graph starts from."""

    language_model, stateful = True, False

    @property
    def window(self) -> int:
        """The tokens per window the graph takes when that is fixed, else 0."""
        shape = self._inputs[0][1]
        return shape[1] if shape and len(shape) == 2 and isinstance(shape[1], int) else 0

    def forward(self, x, state=None):
        x = x if isinstance(x, Tensor) else const(np.asarray(x))
        steps = self.window
        t = x.shape[1] if x.ndim == 2 else 0
        if steps and 0 < t < steps:
            # a graph of fixed windows gets the last, shorter one padded at the end: a causal
            # model's logits up to t do not see what follows, so they are exact
            pad = np.zeros((x.shape[0], steps - t), x.dtype)
            x = const(np.concatenate([x.data, pad], axis=1))
        out = super().forward(x)
        logits = out[0] if isinstance(out, tuple) else out
        return (logits[:, :t] if steps and 0 < t < steps else logits), None


def _alias_identities(views: list[NodeView], inits: dict) -> dict[str, str]:
    """``y = Identity(initializer)`` is how torch.onnx writes a weight it de-duplicated (a fresh
    BatchNorm's running_mean equals its bias): give ``y`` its own initializer under its name."""
    out = {}
    for v in views:
        if (v.op_type == "Identity" and v.inputs and v.inputs[0] in inits
                and v.outputs[0] not in inits):  # fmt: skip
            src = inits[v.inputs[0]]
            out[v.outputs[0]] = src.name
            inits[v.outputs[0]] = src
    return out


def _untie(views: list[NodeView], inits: dict) -> dict[str, tuple[str, str]]:
    """Give each extra layer that reads a shared weight its own copy; returns new -> (old, node)."""
    users: dict[str, list[tuple[NodeView, int]]] = {}
    for v in views:
        if v.op_type in WEIGHT_OPS:
            for i, n in enumerate(v.inputs):
                if n in inits and (i >= 1 or v.op_type == "MatMul"):
                    users.setdefault(n, []).append((v, i))
    new = {}
    for name, us in users.items():
        t = inits[name]
        if len({id(v) for v, _ in us}) < 2 or t.data_type not in (1, 11):
            continue
        for k, (v, i) in enumerate(us[1:], start=1):
            copy = f"{name}#{k}"
            v.inputs[i] = copy
            new[copy] = (name, v.name or f"#{v.index}")
    return new


def load(path_or_model, trainable: bool = True, opset_convert: bool = True,
         untie: bool = True, check: bool = True, upcast: bool | str = False,
         cls: type[OnnxModule] = OnnxModule) -> OnnxModule:  # fmt: skip
    """Import an ONNX model (file path or ModelProto) as a trainable :class:`OnnxModule`.

    Args:
        path_or_model: ``.onnx`` file (external data is read from its folder) or a ModelProto.
        trainable: whether the float initializers start with ``requires_grad`` on.
        opset_convert: bring models older than opset 7 to opset 13 with onnx's converter.
        untie: give each Conv/Gemm/MatMul/RNN that shares a weight initializer its own copy.
        check: run ``onnx.checker`` first.
        upcast: rewrite a float16/bfloat16 graph to float32 (weights, inputs, outputs, casts),
            so its weights train; without it they are constants and each node rounds back.
            ``"float64"`` rewrites every float to float64 (gradient checks).
        cls: the module class (:class:`OnnxLanguageModel` runs a token graph as a language
            model for training).

    Raises:
        BpcliError: unreadable file, failed check, or unsupported nodes (all listed at once).
    """
    model, source = _read(path_or_model)
    if check:
        try:
            onnx.checker.check_model(model)
        except Exception as e:
            raise BpcliError(f"onnx.checker: {str(e).splitlines()[0]}", source) from None
    converted_from = None
    opset = _opsets(model).get("", 0)
    if opset_convert and 0 < opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, CONVERT_TO)
            converted_from = opset
        except Exception:
            pass
    widened = 0
    if upcast:
        from bpcli.onnx.importer.upcast import upcast as upcast_graph

        model, widened = upcast_graph(model, "float32" if upcast is True else upcast)
    mod = cls(model, source, trainable, untie, converted_from)
    mod._info["upcast"] = widened
    return mod
