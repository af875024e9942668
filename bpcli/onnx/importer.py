"""ONNX import: a ModelProto becomes an :class:`OnnxModule` whose forward interprets the graph
with engine ops, so ``loss.backward()`` runs through the imported model itself.

Every node is checked before anything is built: one error lists all unsupported nodes, those
inside subgraphs too (named by their path, ``Loop_0/body/Add_3``). Float initializers become
Parameters named as in the ONNX file (BatchNormalization's running statistics become buffers);
integer initializers stay constants.

A graph attribute (If's branches, Loop's and Scan's body) becomes a :class:`Subgraph`: its nodes
run on engine ops like the main graph's, and see the values of the enclosing scopes by name (ONNX
lexical scoping), so gradients flow through the branch taken and every iteration run.
"""

from __future__ import annotations

import os
from collections import ChainMap, Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.version_converter
from onnx import helper, numpy_helper

from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn.module import Module, Parameter
from bpcli.onnx import (  # noqa: F401  (importing fills IMPORTERS)
    import_ops_attention,
    import_ops_control,
    import_ops_index,
    import_ops_math,
    import_ops_nn,
    import_ops_norm,
    import_ops_reduce,
    import_ops_resize,
    import_ops_rnn,
    import_ops_shape,
    import_ops_spatial,
)
from bpcli.onnx.import_ops import IMPORTERS, Context, NodeView, OpSpec

__all__ = [
    "ImportSummary",
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

    def __str__(self) -> str:
        conv = f" (converted from {self.converted_from})" if self.converted_from else ""
        lines = [f"{self.source}: {self.producer or 'unknown producer'}, opset {self.opset}{conv}"]
        for title, rows in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            lines += [f"  {n} {list(s)} {d}" for n, s, d in rows]
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(self.op_counts.items()))
        lines.append(f"ops ({sum(self.op_counts.values())}): {ops}")
        lines.append(f"parameters: {self.n_params:,} in {len(self.trainable) + len(self.frozen)} "
                     f"tensors ({len(self.trainable)} trainable, {len(self.frozen)} frozen), "
                     f"{len(self.buffers)} buffers")  # fmt: skip
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


def _decode(a: onnx.AttributeProto, opsets: dict[str, int], label: str):
    if a.type == onnx.AttributeProto.GRAPH:
        return Subgraph(a.g, opsets, f"{label}/{a.name}")
    if a.type == onnx.AttributeProto.GRAPHS:
        return [Subgraph(g, opsets, f"{label}/{a.name}[{i}]") for i, g in enumerate(a.graphs)]
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode() for s in v]
    return v


def _views(model: onnx.ModelProto, opsets: dict[str, int]) -> list[NodeView]:
    return _graph_views(model.graph, opsets, "")


def _graph_views(g: onnx.GraphProto, opsets: dict[str, int], prefix: str) -> list[NodeView]:
    views = []
    for i, n in enumerate(g.node):
        dom = "" if n.domain in ("", "ai.onnx") else n.domain
        label = prefix + (n.name or f"#{i}")
        views.append(NodeView(n.name, n.op_type, dom, list(n.input), list(n.output),
                              {a.name: _decode(a, opsets, label) for a in n.attribute},
                              opsets.get(dom, 0), index=i))  # fmt: skip
    return views


def _subgraphs(v: NodeView) -> list[Subgraph]:
    out = []
    for a in v.attrs.values():
        if isinstance(a, Subgraph):
            out.append(a)
        elif isinstance(a, list) and a and isinstance(a[0], Subgraph):
            out += a
    return out


def walk(views: list[NodeView], prefix: str = ""):
    """Yield ``(label, view)`` for every node, those of subgraphs too (label = path and name)."""
    for v in views:
        label = prefix + (v.name or f"#{v.index}")
        yield label, v
        for sub in _subgraphs(v):
            yield from walk(sub.views, sub.path + "/")


def plugin_importer(domain: str, op_type: str) -> OpSpec | None:
    """The importer a plugin registered for an op bpcli has none of (``bpcli_register_onnx_ops``
    names ``"OpType"`` or ``"domain::OpType"``; a function or an ``OpSpec``)."""
    from bpcli.plugins.manager import registry

    reg = registry("onnx_op")
    key = f"{domain}::{op_type}" if domain else op_type
    if key not in reg:
        return None
    obj = reg.get(key)
    return obj if isinstance(obj, OpSpec) else OpSpec(obj)


def _spec_of(v: NodeView) -> OpSpec | None:
    return IMPORTERS.get((v.domain, v.op_type)) or plugin_importer(v.domain, v.op_type)


def support_reason(v: NodeView) -> str | None:
    """Why the node cannot be imported, or None (then ``v.fn`` is set to its importer)."""
    spec = _spec_of(v)
    if spec is None:
        return "no importer for this op"
    if v.opset < spec.since or (spec.until is not None and v.opset > spec.until):
        return f"opset {v.opset} is outside the supported {spec.since}..{spec.until or ''}"
    why = spec.check(v) if spec.check is not None else None
    if why is None:
        v.fn = spec.fn
    return why


def unsupported_nodes(views: list[NodeView]) -> list[str]:
    """One line per node the importer cannot map (name, op type, domain, opset, why)."""
    bad = []
    for label, v in walk(views):
        why = support_reason(v)
        if why:
            bad.append(f"{label} {v.op_type} (domain "
                       f"{v.domain or 'ai.onnx'}, opset {v.opset}): {why}")  # fmt: skip
    return bad


def _toposort(views: list[NodeView], known: set[str], where: str) -> list[NodeView]:
    ready, out, pending = set(known), [], list(views)
    while pending:
        rest = []
        for v in pending:
            if all(not n or n in ready for n in _needs(v)):
                out.append(v)
                ready.update(v.outputs)
            else:
                rest.append(v)
        if len(rest) == len(pending):
            missing = sorted({n for v in rest for n in _needs(v) if n and n not in ready})
            raise BpcliError(f"graph has a cycle or undefined values: {', '.join(missing[:8])}",
                             where)  # fmt: skip
        pending = rest
    return out


def _needs(v: NodeView) -> list[str]:
    """A node's inputs, and the outer values its subgraphs read by name."""
    subs = _subgraphs(v)
    return [*v.inputs, *(n for sub in subs for n in sub.free)] if subs else v.inputs


def _value_info(vi: onnx.ValueInfoProto) -> tuple[str, tuple, np.dtype | None]:
    t = vi.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                  for d in t.shape.dim) if t.HasField("shape") else None  # fmt: skip
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)) if t.elem_type else None
    return vi.name, shape, dtype


# -- running a graph ---------------------------------------------------------------------------


def _describe(a) -> str:
    if isinstance(a, list):
        return f"sequence of {len(a)}"
    return f"{tuple(a.shape)} {a.dtype}"


def run_nodes(ctx: Context, nodes: list[NodeView], env, path: str = "") -> None:
    """Run sorted nodes, reading and writing ``env``; ``ctx.scope`` is ``env`` meanwhile, so a
    node that holds a subgraph runs it in this scope."""
    outer, ctx.scope = ctx.scope, env
    try:
        for node in nodes:
            args = [env[n] if n else None for n in node.inputs]
            where = node.where().replace("node ", f"node {path}/", 1) if path else node.where()
            try:
                out = node.fn(ctx, node, args)
            except BpcliError as e:
                if e.where and e.where.startswith("node ") and e.where != node.where():
                    raise  # located already: by a node of a subgraph this node ran
                raise BpcliError(e.msg if e.where == node.where() else f"{e}", where) from None
            except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
                shapes = ", ".join(_describe(a) for a in args if a is not None)
                raise BpcliError(f"{type(e).__name__}: {e} (inputs {shapes})", where) from None
            # a list is a sequence value, unless the node has several outputs
            many = isinstance(out, tuple) or (isinstance(out, list) and len(node.outputs) > 1)
            outs = out if many else (out,)
            for name, v in zip(node.outputs, outs, strict=False):
                if name:
                    env[name] = v
    finally:
        ctx.scope = outer


class Subgraph:
    """A graph attribute (If's branches, Loop's and Scan's body), run by the node that holds it.

    ``free`` lists the values it reads from enclosing scopes: its node runs after they exist.
    Its initializers are constants, float ones too: they have no model-wide name to be a
    Parameter under, and exporters put weights in the main graph.
    """

    def __init__(self, g: onnx.GraphProto, opsets: dict[str, int], path: str):
        self.path = path
        self.inputs = [vi.name for vi in g.input]
        self.outputs = [_value_info(vi) for vi in g.output]
        self.views = _graph_views(g, opsets, path + "/")
        self.consts = {t.name: const(numpy_helper.to_array(t)) for t in g.initializer}
        own = set(self.inputs) | set(self.consts) | {o for v in self.views for o in v.outputs}
        used = [n for v in self.views for n in _needs(v)] + [n for n, _, _ in self.outputs]
        self.free = sorted({n for n in used if n and n not in own})
        self.nodes = _toposort(self.views, own | set(self.free), path)

    def run(self, ctx: Context, args: list) -> list:
        """The outputs for ``args`` (one per graph input), in the scope ``ctx.scope``."""
        if len(args) != len(self.inputs):
            raise BpcliError(f"expected {len(self.inputs)} input(s), got {len(args)}", self.path)
        env = ChainMap(dict(zip(self.inputs, args, strict=True)), self.consts, ctx.scope)
        run_nodes(ctx, self.nodes, env, self.path)
        return [env[n] for n, _, _ in self.outputs]


# -- the module ------------------------------------------------------------------------------


class OnnxModule(Module):
    """An imported ONNX graph. Parameters keep their ONNX names (dots included)."""

    def __init__(self, model: onnx.ModelProto, source: str = "<model>", trainable: bool = True,
                 untie: bool = True, converted_from: int | None = None):  # fmt: skip
        super().__init__()
        g = model.graph
        opsets = _opsets(model)
        views = _views(model, opsets)
        bad = unsupported_nodes(views)
        if bad:
            raise BpcliError(f"{len(bad)} unsupported node(s):\n  " + "\n  ".join(bad), source)
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
        self._inputs = [_value_info(vi) for vi in g.input if vi.name not in inits]
        self._outputs = [_value_info(vi) for vi in g.output]
        known = set(inits) | set(untied) | {n for n, _, _ in self._inputs}
        object.__setattr__(self, "_nodes", _toposort(views, known, source))
        self._nograd: list[str] = []
        self._info = dict(source=source, producer=f"{model.producer_name} {model.producer_version}"
                          .strip(), opset=opsets.get("", 0), converted_from=converted_from,
                          untied=[f"{k} (copy of {o})" for k, o in aliases.items()]
                          + [f"{k} (copy of {o} for {u})" for k, (o, u) in untied.items()],
                          op_counts=dict(Counter(v.op_type for _, v in walk(views))))  # fmt: skip

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
            if x is None or isinstance(x, list) or (isinstance(x, Tensor) and x.dtype.kind == "U"):
                env[name] = x  # an optional, a sequence or strings: no tensor checks apply
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
            inputs=[(n, s or (), str(d)) for n, s, d in self._inputs],
            outputs=[(n, s or (), str(d)) for n, s, d in self._outputs],
            n_params=sum(p.size for _, p in named),
            trainable=[n for n, p in named if p.requires_grad],
            frozen=[n for n, p in named if not p.requires_grad],
            buffers=list(self._buffers), no_gradient_ops=list(self._nograd), **self._info,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{self._info['source']!r}, {len(self._nodes)} nodes"


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
         untie: bool = True, check: bool = True) -> OnnxModule:  # fmt: skip
    """Import an ONNX model (file path or ModelProto) as a trainable :class:`OnnxModule`.

    Args:
        path_or_model: ``.onnx`` file (external data is read from its folder) or a ModelProto.
        trainable: whether the float initializers start with ``requires_grad`` on.
        opset_convert: bring models older than opset 7 to opset 13 with onnx's converter.
        untie: give each Conv/Gemm/MatMul/RNN that shares a weight initializer its own copy.
        check: run ``onnx.checker`` first.

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
    return OnnxModule(model, source, trainable, untie, converted_from)
