"""Export a model to ONNX: trace one forward pass, then write each recorded op's ONNX nodes.

The trace runs twice, at the example's batch size B and at B + 1, when ``dynamic_batch``: the
sizes and constants that differ between the two passes are the ones that follow the batch,
and the emitters build those from ``Shape(input)`` instead of writing the traced number.
Parameters and buffers become initializers under their state_dict names; other constants get
generated names. Constant-only sub-graphs (masks, zero states) are folded into initializers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

import bpcli
from bpcli.engine import grad_mode
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx import export_spatial  # noqa: F401 - it registers emitters
from bpcli.onnx.context import ExportContext, Inputs, onnx_dtype
from bpcli.onnx.export_nn import EMITTERS
from bpcli.onnx.trace import Record, flatten_outputs, recording

MIN_OPSET = 13
# ops whose attrs may legitimately differ between the two traces (their emitters handle it)
VARYING_ATTRS = {"reshape", "expand", "dropout"}  # dropout: a new seed per call


@dataclass
class ExportResult:
    """What ``export`` wrote."""

    path: Path
    opset: int
    input_names: list[str]
    output_names: list[str]
    initializers: list[str]
    op_types: dict[str, int] = field(default_factory=dict)
    dynamic_batch: bool = True
    training: bool = False

    @property
    def n_nodes(self) -> int:
        return sum(self.op_types.values())


def max_opset() -> int:
    return onnx.defs.onnx_opset_version()


def _as_inputs(example_input) -> list[Tensor]:
    items = example_input if isinstance(example_input, tuple | list) else [example_input]
    out = [t.detach() if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in items]
    for t in out:
        # NOTE: an imported graph folds nodes none of whose inputs need a gradient into numpy
        # constants; a float input that needs one keeps them on the tape (frozen layers too)
        t.requires_grad = t.dtype.kind == "f"
    return out


def _run(model, inputs: list[Tensor]) -> tuple[list[Record], list[Tensor]]:
    with grad_mode.enable_grad(), recording(model) as records:
        out = model(*inputs)
    outs = flatten_outputs(out)
    if not outs:
        raise BpcliError(f"the model returned no tensor ({type(out).__name__})", "export")
    return records, outs


def _bigger_batch(t: Tensor, axis: int) -> Tensor:
    a = t.data
    if a.ndim <= axis or a.shape[axis] == 0:
        raise BpcliError(f"input of shape {a.shape} has no batch axis {axis}", "export")
    extra = np.take(a, [0], axis=axis)
    return Tensor(np.concatenate([a, extra], axis=axis), requires_grad=t.requires_grad)


def _other_values(t: Tensor, rng: np.random.Generator) -> Tensor:
    """``t``'s shape and dtype with other values: floats moved by noise of their own scale,
    integers redrawn within their range, booleans flipped."""
    a = t.data
    if a.dtype.kind == "f":
        b = a + rng.standard_normal(a.shape).astype(a.dtype) * (a.std() + 1) * 0.5
    elif a.dtype.kind in "iu" and a.size:
        b = rng.integers(a.min(), a.max() + 1, a.shape, endpoint=False).astype(a.dtype)
    elif a.dtype.kind == "b":
        b = ~a
    else:
        b = a.copy()
    return Tensor(b, requires_grad=t.requires_grad)


def _trace(model, inputs, dynamic_batch, batch_axis):
    """Records (paired with their twins of the second trace and their calls on other input
    values) and output tensors."""
    state = {k: v.copy() for k, v in model.state_dict().items()}
    try:
        rng = np.random.default_rng(0xB9C1)  # not 0: a test's example drawn with seed 0 moved by
        # noise drawn with seed 0 would only be scaled, which keeps every argsort as it was
        others, _ = _run(model, [_other_values(t, rng) for t in inputs])
        records, outs = _run(model, inputs)
        if len(others) != len(records) or any(
            a.name != b.name for a, b in zip(records, others, strict=True)
        ):
            raise BpcliError("the model runs different ops for different input values "
                             "(control flow on the data): one traced graph cannot hold it",
                             "export")  # fmt: skip
        for a, b in zip(records, others, strict=True):
            a.other = b
        outs2 = None
        if dynamic_batch:
            recs2, outs2 = _run(model, [_bigger_batch(t, batch_axis) for t in inputs])
            same = len(recs2) == len(records) and all(
                a.name == b.name for a, b in zip(records, recs2, strict=True)
            )
            if not same or len(outs2) != len(outs):
                raise BpcliError(
                    "the model runs different ops at different batch sizes; export with "
                    "dynamic_batch=False",
                    "export",
                )
            for a, b in zip(records, recs2, strict=True):
                a.twin = b
    finally:
        current = model.state_dict()
        for k, v in state.items():  # a training-mode trace updates BatchNorm's running stats
            np.copyto(current[k], v)
    return records, outs, outs2


def _needed(records: list[Record], live: set[int], outs: list[Tensor]) -> list[Record]:
    want = {id(t) for t in outs}
    keep = []
    for rec in reversed(records):
        if any(id(o) in want for o in rec.outputs) and any(id(o) in live for o in rec.outputs):
            keep.append(rec)
            want.update(id(t) for t in rec.inputs)
    return keep[::-1]


def emitter_of(name: str):
    """The emitter of engine op ``name``: built-in, else a plugin's ``"export:<name>"``, else
    (an op whose class names its ``onnx`` type and has no attrs) one node of that type."""
    if name in EMITTERS:
        return EMITTERS[name]
    from bpcli.engine.op import OPS
    from bpcli.plugins.manager import registry

    reg = registry("onnx_op")
    if f"export:{name}" in reg:
        return reg.get(f"export:{name}")
    onnx_type = getattr(OPS.get(name), "onnx", None)
    if onnx_type:

        def one_node(ctx, rec, ins):
            if rec.attrs:
                raise BpcliError(f"has attrs {sorted(rec.attrs)}; register an emitter "
                                 f"'export:{name}' for it", rec.where)  # fmt: skip
            return ctx.node(onnx_type, list(ins), n_out=len(rec.outputs))

        return one_node
    return None


def _check_supported(ctx: ExportContext, recs: list[Record]) -> None:
    missing = sorted({r.where for r in recs if emitter_of(r.name) is None})
    if missing:
        raise BpcliError(
            f"no ONNX export for {len(missing)} op(s): {', '.join(missing)}", "onnx export"
        )
    for r in recs:
        if r.twin is not None and r.name not in VARYING_ATTRS and r.attrs != r.twin.attrs:
            raise BpcliError(
                f"attributes {r.attrs} change with the batch size ({r.twin.attrs}); export "
                "with dynamic_batch=False",
                r.where,
            )


def _check_frozen_values(ctx: ExportContext, recs: list[Record]) -> None:
    """A constant an op reads that changed with the input's values was computed outside the
    traced ops (an index found in numpy, a random draw): the file would freeze one value."""
    for r in recs:
        for i, (t, u) in enumerate(zip(r.inputs, r.other.inputs, strict=True)):
            if id(t) in ctx.live or t.shape != u.shape:
                continue  # traced, or batch-dependent (the second trace checks those)
            if not np.array_equal(t.data, u.data, equal_nan=t.dtype.kind in "fc"):
                raise BpcliError(
                    f"input {i} is a constant that changes with the model's input values (it "
                    "was computed outside the traced ops, or drawn at random); an exported "
                    "graph would freeze it",
                    r.where,
                )


def _value_info(ctx, name, t: Tensor, t2: Tensor | None):
    shape = []
    for k, n in enumerate(t.shape):
        if t2 is None or t2.shape[k] == n:
            shape.append(n)
        elif ctx.batch_sizes and (n, t2.shape[k]) == ctx.batch_sizes:
            shape.append("batch")
        else:
            shape.append(f"{name}_dim{k}")
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype), shape)


def build_graph(model, example_input, opset=17, dynamic_batch=True, training=False,
                input_names=None, output_names=None, batch_axis=0):  # fmt: skip
    """The ONNX ModelProto of ``model`` traced on ``example_input`` (see ``export``)."""
    if not MIN_OPSET <= opset <= max_opset():
        raise BpcliError(f"opset {opset} is outside {MIN_OPSET}..{max_opset()}", "onnx export")
    inputs = _as_inputs(example_input)
    in_names = list(input_names or (["input"] if len(inputs) == 1 else
                                    [f"input_{i}" for i in range(len(inputs))]))  # fmt: skip
    if len(in_names) != len(inputs):
        raise BpcliError(f"{len(in_names)} input names for {len(inputs)} inputs", "onnx export")
    was_training = model.training
    model.train(training)
    try:
        records, outs, outs2 = _trace(model, inputs, dynamic_batch, batch_axis)
    finally:
        model.train(was_training)
    named = list(model.named_parameters()) + list(model.named_buffers())
    params = {id(t): n for n, t in named}
    ctx = ExportContext(opset, training, params)
    for n in params.values():
        ctx.reserve(n)
    for n in in_names:
        ctx.reserve(n)
    ctx.live = {id(t) for t in inputs} | set(params)
    for rec in records:
        if any(id(t) in ctx.live for t in rec.inputs):
            ctx.live.update(id(t) for t in rec.outputs)
    for t, n in zip(inputs, in_names, strict=True):
        ctx.names[id(t)] = n
    if dynamic_batch:
        ctx.batch_input, ctx.batch_axis = in_names[0], batch_axis
        b = inputs[0].shape[batch_axis]
        ctx.batch_sizes = (b, b + 1)
    recs = _needed(records, ctx.live, outs)
    _check_supported(ctx, recs)
    _check_frozen_values(ctx, recs)
    for rec in recs:
        _emit(ctx, rec)
    return _assemble(ctx, model, inputs, in_names, outs, outs2, output_names)


def _emit(ctx: ExportContext, rec: Record) -> None:
    ctx.path = rec.path
    out = emitter_of(rec.name)(ctx, rec, Inputs(ctx, rec))
    out = [out] if isinstance(out, str) else list(out)
    for t, name in zip(rec.outputs, out, strict=False):
        if name:
            ctx.names[id(t)] = name


def _assemble(ctx, model, inputs, in_names, outs, outs2, output_names):
    out_names = list(output_names or (["output"] if len(outs) == 1 else
                                      [f"output_{i}" for i in range(len(outs))]))  # fmt: skip
    if len(out_names) != len(outs):
        raise BpcliError(f"{len(out_names)} output names for {len(outs)} outputs", "onnx export")
    ctx.path = ""
    graph_outs = []
    for k, (t, name) in enumerate(zip(outs, out_names, strict=True)):
        if id(t) in ctx.names:
            src = ctx.names[id(t)]
        else:  # an output that does not depend on the input: a constant
            src = ctx.const(t.data, "const")
        ctx.node("Identity", [src], outputs=[name])
        graph_outs.append(_value_info(ctx, name, t, outs2[k] if outs2 else None))
    for name, dtype, shape in ctx.extra_outputs:
        graph_outs.append(helper.make_tensor_value_info(name, onnx_dtype(dtype), shape))
    used = {i for n in ctx.nodes for i in n.input}
    unused = [n for n in in_names if n not in used]
    if unused:  # an op took the input's values as constants: the file would ignore its input
        raise BpcliError(f"the traced graph does not read input(s) {', '.join(unused)} (an op "
                         "used their values as constants)", "onnx export")  # fmt: skip
    graph_ins = []
    for t, name in zip(inputs, in_names, strict=True):
        shape = list(t.shape)
        if ctx.batch_sizes is not None and name == ctx.batch_input:
            shape[ctx.batch_axis] = "batch"
        graph_ins.append(helper.make_tensor_value_info(name, onnx_dtype(t.dtype), shape))
    graph = helper.make_graph(
        ctx.nodes,
        type(model).__name__,
        graph_ins,
        graph_outs,
        initializer=list(ctx.initializers.values()),
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ctx.opset)],
        producer_name="bpcli",
        producer_version=bpcli.__version__,
    )
    meta = {}
    for t, name in zip(inputs, in_names, strict=True):
        if t.dtype.kind in "iu" and t.size:  # lets verify() draw valid indices
            meta[f"bpcli.int_range.{name}"] = f"{int(t.data.min())},{int(t.data.max())}"
    if meta:
        helper.set_model_props(proto, meta)
    return proto


def _check_opset(proto, opset: int) -> None:
    """Every node's op must exist at ``opset``: one error naming those that need a newer one."""
    too_new = {}
    for node in proto.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, opset, domain)
        except onnx.defs.SchemaError:
            versions = [
                sch.since_version
                for sch in onnx.defs.get_all_schemas_with_history()
                if sch.name == node.op_type and sch.domain == domain
            ]
            too_new[node.op_type] = min(versions, default=None)
    if too_new:
        parts = [f"{op} (opset {v}+)" if v else op for op, v in sorted(too_new.items())]
        newest = max((v for v in too_new.values() if v), default=None)
        hint = f"; export with --opset {newest} or newer" if newest else ""
        raise BpcliError(f"opset {opset} has no {', '.join(parts)}{hint}", "export")


def export(model, example_input, path, opset: int = 17, dynamic_batch: bool = True,
           training: bool = False, input_names=None, output_names=None,
           batch_axis: int = 0) -> ExportResult:  # fmt: skip
    """Write ``model`` as an ONNX file that onnxruntime runs with the same results.

    Args:
        model: a ``bp.nn.Module``.
        example_input: a tensor/array (or a tuple of them for several inputs) to trace with.
        path: the ``.onnx`` file to write.
        opset: ONNX opset, 13 up to the newest the installed ``onnx`` knows.
        dynamic_batch: make dim ``batch_axis`` of the inputs symbolic (``batch``).
        training: export the training-mode graph (BatchNormalization with batch statistics
            and running-stat outputs, Dropout active) instead of the inference graph.
        input_names, output_names: graph input/output names (``input``/``output`` default).
        batch_axis: which input dim is the batch (1 for sequence-first RNN inputs).

    Returns:
        An ``ExportResult`` naming the file, opset, inputs, outputs and initializers.
    """
    proto = build_graph(model, example_input, opset, dynamic_batch, training, input_names,
                        output_names, batch_axis)  # fmt: skip
    _check_opset(proto, opset)
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    onnx.save_model(proto, str(path))
    g = proto.graph
    return ExportResult(
        path=path,
        opset=opset,
        input_names=[i.name for i in g.input],
        output_names=[o.name for o in g.output],
        initializers=[i.name for i in g.initializer],
        op_types=dict(Counter(n.op_type for n in g.node)),
        dynamic_batch=dynamic_batch,
        training=training,
    )
