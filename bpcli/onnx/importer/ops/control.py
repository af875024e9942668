"""Import of control flow and of the sequence and optional ops that loops build on.

If (1+), Loop (1+) and Scan (8+, opset 8's batched form too) run their subgraphs
(:class:`bpcli.onnx.importer.graph.Subgraph`) eagerly: a Python loop over iterations, each running
engine ops on Tensors, so the gradient flows through the branch taken and every iteration run
(the backward graph is the unrolled loop). Loop's and Scan's scan outputs are stacked with
``F.stack`` when they carry a gradient.

Sequences are Python lists of Tensors and an empty optional is ``None`` (as in
:mod:`bpcli.onnx.conformance.backend`):
SequenceEmpty, SequenceConstruct, SequenceAt, SequenceInsert,
SequenceErase, SequenceLength, ConcatFromSequence, SplitToSequence, SequenceMap (its body run
once per element), Optional, OptionalHasElement, OptionalGetElement. The ops that take a
sequence apart or build one keep its Tensors as they are, so gradients pass through them.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, ints, norm_axis, register, scalar, wrap

# -- helpers --------------------------------------------------------------------------------


def _flag(t, node: NodeView, what: str) -> bool:
    if t.numel() != 1:
        raise node.fail(f"the {what} must hold one value, got shape {t.shape}")
    return bool(t.data.reshape(-1)[0])


def _stack(ts: list, axis: int):
    if grad(*ts):
        return F.stack(ts, axis)
    return wrap(np.stack([t.data for t in ts], axis))


def _unstack(x, axis: int) -> list:
    """The slices of ``x`` along ``axis``, that axis dropped (one split, so backward is one
    concat instead of a full-size zero gradient per slice)."""
    n = x.shape[axis]
    if not grad(x) or n == 0:
        return [wrap(np.take(x.data, t, axis)) for t in range(n)]
    shape = x.shape[:axis] + x.shape[axis + 1 :]
    return [F.reshape(p, shape) for p in F.split(x, [1] * n, axis)]


def _concat(ts: list, axis: int):
    if grad(*ts):
        return F.concat(ts, axis)
    return wrap(np.concatenate([t.data for t in ts], axis))


def _empty(info, axis: int = 0):
    """A scan output of no iterations: zero along ``axis``, the element shape its value info
    gives (unknown sizes taken as 0)."""
    _, shape, dtype = info
    dims = [d if isinstance(d, int) else 0 for d in shape or ()]
    dims.insert(axis % (len(dims) + 1), 0)
    return wrap(np.zeros(dims, dtype or np.float32))


def _scan_output(elems: list, info, axis: int, node: NodeView):
    if not elems:
        return _empty(info, axis)
    rank = elems[0].ndim + 1
    return _stack(elems, norm_axis(axis, rank, node))


def _check_body(attr: str, n_inputs):
    """A load-time check that the body graph takes as many inputs as ``n_inputs(view)``."""

    def check(v: NodeView) -> str | None:
        body = v.attr(attr)
        if body is None:
            return f"the {attr} attribute is missing"
        want = n_inputs(v)
        if want is not None and len(body.inputs) != want:
            return f"the {attr} graph takes {len(body.inputs)} inputs, the node gives {want}"
        return None

    return check


# -- If, Loop ------------------------------------------------------------------------------


def _if_check(v: NodeView) -> str | None:
    for b in ("then_branch", "else_branch"):
        branch = v.attr(b)
        if branch is None:
            return f"the {b} attribute is missing"
        if len(branch.outputs) != len(v.outputs):
            return f"{b} has {len(branch.outputs)} outputs, the node {len(v.outputs)}"
    return None


@register("If", since=1, check=_if_check)
def if_(ctx, node: NodeView, inputs):
    take = _flag(inputs[0], node, "condition")
    return tuple(node.attr("then_branch" if take else "else_branch").run(ctx, []))


def _loop_check(v: NodeView) -> str | None:
    if not v.inputs[0] and not (len(v.inputs) > 1 and v.inputs[1]):
        return "neither a trip count M nor a condition: the loop would never end"
    return _check_body("body", lambda v: len(v.inputs))(v)


@register("Loop", since=1, check=_loop_check)
def loop(ctx, node: NodeView, inputs):
    body = node.attr("body")
    trips = None if inputs[0] is None else int(scalar(inputs[0]))
    has_cond = len(inputs) > 1 and inputs[1] is not None
    keep = _flag(inputs[1], node, "condition") if has_cond else True
    carried = list(inputs[2:])
    n = len(carried)
    scans: list[list] = [[] for _ in body.outputs[1 + n :]]
    i = 0
    while keep and (trips is None or i < trips):
        outs = body.run(ctx, [wrap(np.array(i, np.int64)), wrap(np.array(keep)), *carried])
        # without a condition input the body's condition output is ignored (a for loop)
        keep = _flag(outs[0], node, "body's condition output") if has_cond else True
        carried = outs[1 : 1 + n]
        for acc, v in zip(scans, outs[1 + n :], strict=True):
            acc.append(v)
        i += 1
    finals = [_scan_output(acc, info, 0, node) for acc, info in zip(scans, body.outputs[1 + n :])]
    return tuple(carried + finals)


# -- Scan ----------------------------------------------------------------------------------


def _scan_inputs(v: NodeView):
    return len(v.inputs) - (1 if v.opset < 9 else 0)


def _directions(node: NodeView, key: str, count: int) -> list[int]:
    dirs = node.attr(key) or [0] * count
    if len(dirs) != count or any(d not in (0, 1) for d in dirs):
        raise node.fail(f"{key} must be {count} flags of 0 or 1, got {list(dirs)}")
    return list(dirs)


def _run_scan(ctx, body, states: list, columns: list[list]) -> tuple[list, list[list]]:
    """Run ``body`` once per step: ``columns[j][t]`` is scan input j's element at step t."""
    n = len(states)
    outs_k = [[] for _ in body.outputs[n:]]
    for step in zip(*columns, strict=True):
        outs = body.run(ctx, [*states, *step])
        states = outs[:n]
        for acc, v in zip(outs_k, outs[n:], strict=True):
            acc.append(v)
    return states, outs_k


@register("Scan", since=8, check=_check_body("body", _scan_inputs))
def scan(ctx, node: NodeView, inputs):
    if node.opset < 9:
        return _scan8(ctx, node, inputs)
    body, m = node.attr("body"), node.attr("num_scan_inputs")
    n = len(inputs) - m
    states, xs = list(inputs[:n]), inputs[n:]
    axes = node.attr("scan_input_axes") or [0] * m
    in_dirs = _directions(node, "scan_input_directions", m)
    columns = []
    for x, a, d in zip(xs, axes, in_dirs, strict=True):
        elems = _unstack(x, norm_axis(a, x.ndim, node))
        columns.append(elems[::-1] if d else elems)
    if len({len(c) for c in columns}) > 1:
        raise node.fail(f"scan inputs of different lengths {[len(c) for c in columns]}")
    states, outs_k = _run_scan(ctx, body, states, columns)
    k = len(outs_k)
    out_axes = node.attr("scan_output_axes") or [0] * k
    out_dirs = _directions(node, "scan_output_directions", k)
    finals = []
    for acc, info, a, d in zip(outs_k, body.outputs[n:], out_axes, out_dirs, strict=True):
        finals.append(_scan_output(acc[::-1] if d else acc, info, a, node))
    return tuple(states + finals)


def _scan8(ctx, node: NodeView, inputs):
    """Opset 8: batch axis 0 on every state and scan input, the scan axis 1; a sequence shorter
    than the longest (``sequence_lens``) gives scan outputs padded with zeros."""
    body, m = node.attr("body"), node.attr("num_scan_inputs")
    lens, rest = inputs[0], inputs[1:]
    n = len(rest) - m
    dirs = _directions(node, "directions", m)
    batch, steps = rest[n].shape[0], rest[n].shape[1]
    lens = [steps] * batch if lens is None else ints(lens)
    by_batch = [_unstack(t, 0) for t in rest]
    per_states, per_outs = [], []
    for b in range(batch):
        if not 0 <= lens[b] <= steps:
            raise node.fail(f"sequence_lens[{b}] = {lens[b]} is outside 0..{steps}")
        states = [s[b] for s in by_batch[:n]]
        columns = []
        for x, d in zip(by_batch[n:], dirs, strict=True):
            elems = _unstack(x[b], 0)[: lens[b]]
            columns.append(elems[::-1] if d else elems)
        states, outs_k = _run_scan(ctx, body, states, columns)
        per_states.append(states)
        per_outs.append([_padded(acc, info, steps) for acc, info in zip(outs_k, body.outputs[n:])])
    finals = [_stack([s[j] for s in per_states], 0) for j in range(n)]
    finals += [_stack([o[j] for o in per_outs], 0) for j in range(len(body.outputs) - n)]
    return tuple(finals)


def _padded(acc: list, info, steps: int):
    out = _stack(acc, 0) if acc else _empty(info)
    if out.shape[0] == steps:
        return out
    if not acc:
        return wrap(np.zeros((steps, *out.shape[1:]), out.dtype))
    pad = wrap(np.zeros((steps - out.shape[0], *out.shape[1:]), out.dtype))
    return _concat([out, pad], 0)


# -- sequences -----------------------------------------------------------------------------


def _position(t, length: int, node: NodeView, default: int, insert: bool = False) -> int:
    pos = default if t is None else int(scalar(t))
    hi = length if insert else length - 1
    if not -length <= pos <= hi:
        raise node.fail(f"position {pos} is out of range for a sequence of {length}")
    return pos + length if pos < 0 else pos


def _seq(t, node: NodeView) -> list:
    if not isinstance(t, list):
        raise node.fail(f"expected a sequence, got {'nothing' if t is None else 'a tensor'}")
    return t


@register("SequenceEmpty", since=11)
def sequence_empty(ctx, node, inputs):
    return []


@register("SequenceConstruct", since=11)
def sequence_construct(ctx, node, inputs):
    return list(inputs)


@register("SequenceAt", since=11)
def sequence_at(ctx, node, inputs):
    seq = _seq(inputs[0], node)
    return seq[_position(inputs[1], len(seq), node, 0)]


@register("SequenceInsert", since=11)
def sequence_insert(ctx, node, inputs):
    seq = _seq(inputs[0], node)
    pos = _position(inputs[2] if len(inputs) > 2 else None, len(seq), node, len(seq), True)
    return [*seq[:pos], inputs[1], *seq[pos:]]  # a new list: the input may be used elsewhere


@register("SequenceErase", since=11)
def sequence_erase(ctx, node, inputs):
    seq = _seq(inputs[0], node)
    pos = _position(inputs[1] if len(inputs) > 1 else None, len(seq), node, -1)
    return seq[:pos] + seq[pos + 1 :]


@register("SequenceLength", since=11)
def sequence_length(ctx, node, inputs):
    return wrap(np.array(len(_seq(inputs[0], node)), np.int64))


@register("ConcatFromSequence", since=11)
def concat_from_sequence(ctx, node, inputs):
    seq = _seq(inputs[0], node)
    if not seq:
        raise node.fail("cannot concatenate an empty sequence")
    axis = node.attr("axis")
    if node.attr("new_axis", 0):
        return _stack(seq, norm_axis(axis, seq[0].ndim + 1, node))
    return _concat(seq, norm_axis(axis, seq[0].ndim, node))


@register("SplitToSequence", since=11)
def split_to_sequence(ctx, node, inputs):
    x = inputs[0]
    split = inputs[1] if len(inputs) > 1 else None
    axis = norm_axis(node.attr("axis", 0), x.ndim, node)
    n = x.shape[axis]
    if split is None:
        if not node.attr("keepdims", 1):
            return _unstack(x, axis)
        sizes = [1] * n
    elif split.ndim == 0:
        s = int(scalar(split))
        sizes = [s] * (n // s) + ([n % s] if n % s else [])
    else:
        sizes = ints(split)
    if sum(sizes) != n:
        raise node.fail(f"split sizes {sizes} do not add up to the axis length {n}")
    if grad(x) and n:
        return list(F.split(x, sizes, axis))
    return [wrap(p) for p in np.split(x.data, np.cumsum(sizes)[:-1], axis=axis)]


@register("SequenceMap", since=17, check=_check_body("body", lambda v: len(v.inputs)))
def sequence_map(ctx, node, inputs):
    seq, extra = _seq(inputs[0], node), inputs[1:]
    for e in extra:
        if isinstance(e, list) and len(e) != len(seq):
            raise node.fail(f"sequences of different lengths {len(seq)} and {len(e)}")
    body = node.attr("body")
    outs = [[] for _ in body.outputs]
    for i, item in enumerate(seq):
        args = [item, *(e[i] if isinstance(e, list) else e for e in extra)]
        for acc, v in zip(outs, body.run(ctx, args), strict=True):
            acc.append(v)
    return tuple(outs)


# -- optionals -----------------------------------------------------------------------------


@register("Optional", since=15)
def optional(ctx, node, inputs):
    return inputs[0] if inputs else None


@register("OptionalHasElement", since=15)
def optional_has_element(ctx, node, inputs):
    return wrap(np.array(bool(inputs) and inputs[0] is not None))


@register("OptionalGetElement", since=15)
def optional_get_element(ctx, node, inputs):
    if not inputs or inputs[0] is None:
        raise node.fail("the optional input is empty")
    return inputs[0]
