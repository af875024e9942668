"""An ONNX graph as the importer runs it: nodes decoded into :class:`NodeView` (those of
subgraphs too), checked for support, sorted, and run one by one on engine ops.

A graph attribute (If's branches, Loop's and Scan's body) becomes a :class:`Subgraph`: its nodes
run like the main graph's and see the values of the enclosing scopes by name (ONNX lexical
scoping), so gradients flow through the branch taken and every iteration run.
"""

from __future__ import annotations

from collections import ChainMap

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bpcli.engine.convert import const
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.minifloat import is_narrow_float
from bpcli.onnx.importer.table import IMPORTERS, Context, NodeView, OpSpec


def views_of(model: onnx.ModelProto, opsets: dict[str, int]) -> list[NodeView]:
    """The main graph's nodes, decoded."""
    return _graph_views(model.graph, opsets, "")


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


def _graph_views(g: onnx.GraphProto, opsets: dict[str, int], prefix: str) -> list[NodeView]:
    views = []
    for i, n in enumerate(g.node):
        dom = "" if n.domain in ("", "ai.onnx") else n.domain
        label = prefix + (n.name or f"#{i}")
        views.append(NodeView(n.name, n.op_type, dom, list(n.input), list(n.output),
                              {a.name: _decode(a, opsets, label) for a in n.attribute},
                              opsets.get(dom, 0), index=i))  # fmt: skip
    return views


def subgraphs_of(v: NodeView) -> list[Subgraph]:
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
        for sub in subgraphs_of(v):
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


def toposort(views: list[NodeView], known: set[str], where: str) -> list[NodeView]:
    ready, out, pending = set(known), [], list(views)
    while pending:
        rest = []
        for v in pending:
            if all(not n or n in ready for n in needs(v)):
                out.append(v)
                ready.update(v.outputs)
            else:
                rest.append(v)
        if len(rest) == len(pending):
            missing = sorted({n for v in rest for n in needs(v) if n and n not in ready})
            raise BpcliError(f"graph has a cycle or undefined values: {', '.join(missing[:8])}",
                             where)  # fmt: skip
        pending = rest
    return out


def needs(v: NodeView) -> list[str]:
    """A node's inputs, and the outer values its subgraphs read by name."""
    subs = subgraphs_of(v)
    return [*v.inputs, *(n for sub in subs for n in sub.free)] if subs else v.inputs


def value_info(vi: onnx.ValueInfoProto) -> tuple[str, tuple, np.dtype | None]:
    t = vi.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                  for d in t.shape.dim) if t.HasField("shape") else None  # fmt: skip
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)) if t.elem_type else None
    return vi.name, shape, dtype


# -- running a graph ---------------------------------------------------------------------------


def _describe(a) -> str:
    if isinstance(a, list):
        return f"sequence of {len(a)}"
    if isinstance(a, dict):
        return f"map of {len(a)}"
    return f"{tuple(a.shape)} {a.dtype}"


def type_text(tp: onnx.TypeProto) -> str:
    """A value's ONNX type as text: ``float32``, ``seq(map(int64, float32))``, ..."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        e = tp.tensor_type.elem_type
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(e))) if e else "tensor"
    if kind == "sequence_type":
        return f"seq({type_text(tp.sequence_type.elem_type)})"
    if kind == "map_type":
        key = onnx.TensorProto.DataType.Name(tp.map_type.key_type).lower()
        return f"map({key}, {type_text(tp.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({type_text(tp.optional_type.elem_type)})"
    return kind or "?"


# Ops that take narrow floats as they are: Cast rounds into them by ONNX's rules, these set
# their output type by attribute rather than from the input's, and for the quantization ops
# float8 values are quantized data and float16 scales set the arithmetic's precision.
NARROW_AS_IS = {"Cast", "CastLike", "EyeLike", "RandomNormalLike", "RandomUniformLike",
                "Bernoulli", "Multinomial", "QuantizeLinear", "DequantizeLinear",
                "QLinearMatMul"}  # fmt: skip


def _call(ctx: Context, node: NodeView, args: list):
    """``node.fn(ctx, node, args)``; a node fed float16/bfloat16 computes in float32 and its
    float outputs are rounded back once to the first narrow input's type, as CPU kernels of
    those types do (the engine has float32/64).

    NOTE: an op whose outputs follow different inputs' types (LinearAttention's state may be
    float16 beside float32 queries) gets every float output in that one narrow type."""
    narrow = [a.dtype for a in args if isinstance(a, Tensor) and is_narrow_float(a.dtype)]
    if not narrow or node.op_type in NARROW_AS_IS:
        return node.fn(ctx, node, args)
    wide = [const(a.data.astype(np.float32)) if isinstance(a, Tensor) and is_narrow_float(a.dtype)
            else a for a in args]  # fmt: skip
    out = node.fn(ctx, node, wide)
    to = narrow[0]

    def back(v):
        if isinstance(v, Tensor) and v.dtype == np.float32:
            return const(v.data.astype(to))
        return [back(x) for x in v] if isinstance(v, list) else v

    return tuple(back(v) for v in out) if isinstance(out, tuple) else back(out)


def run_nodes(ctx: Context, nodes: list[NodeView], env, path: str = "") -> None:
    """Run sorted nodes, reading and writing ``env``; ``ctx.scope`` is ``env`` meanwhile, so a
    node that holds a subgraph runs it in this scope."""
    outer, ctx.scope = ctx.scope, env
    try:
        for node in nodes:
            args = [env[n] if n else None for n in node.inputs]
            where = node.where().replace("node ", f"node {path}/", 1) if path else node.where()
            try:
                out = _call(ctx, node, args)
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
        self.outputs = [value_info(vi) for vi in g.output]
        self.views = _graph_views(g, opsets, path + "/")
        self.consts = {t.name: const(numpy_helper.to_array(t)) for t in g.initializer}
        own = set(self.inputs) | set(self.consts) | {o for v in self.views for o in v.outputs}
        used = [n for v in self.views for n in needs(v)] + [n for n, _, _ in self.outputs]
        self.free = sorted({n for n in used if n and n not in own})
        self.nodes = toposort(self.views, own | set(self.free), path)

    def run(self, ctx: Context, args: list) -> list:
        """The outputs for ``args`` (one per graph input), in the scope ``ctx.scope``."""
        if len(args) != len(self.inputs):
            raise BpcliError(f"expected {len(self.inputs)} input(s), got {len(args)}", self.path)
        env = ChainMap(dict(zip(self.inputs, args, strict=True)), self.consts, ctx.scope)
        run_nodes(ctx, self.nodes, env, self.path)
        return [env[n] for n, _, _ in self.outputs]
