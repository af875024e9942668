"""Import of reductions, softmax-like ops, ArgMax/ArgMin, TopK and Einsum."""

from __future__ import annotations

from functools import partial

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer import minifloat
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, ints, norm_axis, register, wrap

# op type -> (engine composition of (x, axes, keepdims), numpy reference, opset axes became input)
_REDUCE = {
    "ReduceSum": (lambda x, a, k: F.sum(x, a, k), np.sum, 13),
    "ReduceMean": (lambda x, a, k: F.mean(x, a, k), np.mean, 18),
    "ReduceMax": (lambda x, a, k: F.amax(x, a, k), np.max, 18),
    "ReduceMin": (lambda x, a, k: F.amin(x, a, k), np.min, 18),
    "ReduceLogSumExp": (lambda x, a, k: F.logsumexp(x, a, k), None, 18),
    "ReduceL1": (lambda x, a, k: F.sum(F.abs(x), a, k), lambda v, axis, keepdims: np.sum(
        np.abs(v), axis=axis, keepdims=keepdims), 18),
    "ReduceL2": (lambda x, a, k: F.sqrt(F.sum(F.mul(x, x), a, k)),
                 lambda v, axis, keepdims: np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims)),
                 18),
    "ReduceSumSquare": (lambda x, a, k: F.sum(F.mul(x, x), a, k), lambda v, axis, keepdims: np.sum(
        v * v, axis=axis, keepdims=keepdims), 18),
    "ReduceLogSum": (lambda x, a, k: F.log(F.sum(x, a, k)), lambda v, axis, keepdims: np.log(
        np.sum(v, axis=axis, keepdims=keepdims)), 18),
    "ReduceProd": (None, np.prod, 18),
}  # fmt: skip


@register(*_REDUCE)
def reduce(ctx, node: NodeView, inputs):
    x = inputs[0]
    engine_fn, np_fn, axes_input_since = _REDUCE[node.op_type]
    keep = bool(node.attr("keepdims", 1))
    if node.opset >= axes_input_since:
        axes = ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else None
    else:
        axes = node.attr("axes")
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return x
        axes = None
    else:
        axes = tuple(a % max(x.ndim, 1) for a in axes)
    if x.numel() == 0 and (axes is not None or not grad(x)):
        return wrap(_empty_reduce(node.op_type, x.data, axes, keep))
    if not grad(x) and np_fn is not None:
        return wrap(np.asarray(np_fn(x.data, axis=axes, keepdims=keep)).astype(x.dtype))
    if engine_fn is None:
        ctx.module._note_nograd(node)
        return wrap(np.asarray(np_fn(x.data, axis=axes, keepdims=keep)).astype(x.dtype))
    return engine_fn(x, axes, keep)


def _empty_reduce(op_type, a, axes, keep):
    fill = {
        "ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceLogSumExp": -np.inf,
        "ReduceLogSum": -np.inf, "ReduceProd": 1, "ReduceMean": np.nan,
    }.get(op_type, 0)  # fmt: skip
    shape = list(a.shape)
    for ax in axes if axes is not None else range(a.ndim):
        shape[ax] = 1
    out = (
        np.full(shape, fill).astype(a.dtype) if a.dtype.kind == "f" else np.full(shape, 0, a.dtype)
    )
    if a.dtype.kind in "iu" and op_type in ("ReduceMax", "ReduceMin"):
        info = np.iinfo(a.dtype)
        out = np.full(shape, info.min if op_type == "ReduceMax" else info.max, a.dtype)
    if not keep:
        out = out.reshape([n for i, n in enumerate(shape) if axes is not None and i not in axes])
    return out


def _softmax_like(kind):
    def fn(ctx, node, inputs):
        x = inputs[0]
        if node.opset < 13:
            # before opset 13 the input is coerced to 2-D at ``axis`` (default 1)
            axis = node.attr("axis", 1) % max(x.ndim, 1)
            shape = x.shape
            lead = int(np.prod(shape[:axis], dtype=np.int64))
            x2 = F.reshape(x, (lead, -1) if x.numel() else (lead, int(np.prod(shape[axis:]))))
            return F.reshape(_apply(kind, x2, 1), shape)
        return _apply(kind, x, node.attr("axis", -1))

    return fn


def _apply(kind, x, axis):
    if kind == "Softmax":
        return F.softmax(x, axis)
    if kind == "LogSoftmax":
        return F.log_softmax(x, axis)
    am = np.argmax(x.data, axis=axis)
    hot = np.moveaxis(np.eye(x.shape[axis], dtype=x.dtype)[am], -1, axis)
    return wrap(hot)


for _k in ("Softmax", "LogSoftmax", "Hardmax"):
    register(_k)(_softmax_like(_k))


@register("ArgMax", "ArgMin")
def argmax(ctx, node, inputs):
    x = inputs[0].data
    axis, keep = node.attr("axis", 0), bool(node.attr("keepdims", 1))
    if not node.attr("select_last_index", 0) and x.dtype.kind == "f" and x.ndim:
        # the engine op, so an export of the imported model computes the index too
        fn = F.argmax if node.op_type == "ArgMax" else F.argmin
        return fn(inputs[0], axis=norm_axis(axis, x.ndim, node), keepdims=keep)
    fn = np.argmax if node.op_type == "ArgMax" else np.argmin
    if node.attr("select_last_index", 0):
        flipped = np.flip(x, axis)
        out = x.shape[axis] - 1 - fn(flipped, axis=axis)
    else:
        out = fn(x, axis=axis)
    if keep:
        out = np.expand_dims(out, axis)
    return wrap(np.asarray(out, dtype=np.int64))


@register("TopK", since=10)
def topk(ctx, node, inputs):
    x, k = inputs[0], int(inputs[1].data.reshape(-1)[0])
    axis = node.attr("axis", -1) % x.ndim
    largest, is_sorted = node.attr("largest", 1), node.attr("sorted", 1)
    # the engine op for every dtype: its gradient, and an export computes the indices too
    return F.topk(x, k, axis, bool(largest), bool(is_sorted))


@register("Einsum", since=12)
def einsum(ctx, node, inputs):
    eq = node.attr("equation").replace(" ", "")
    if not grad(*inputs):
        return wrap(minifloat.widened(partial(np.einsum, eq), *[t.data for t in inputs]))
    return _einsum_engine(node, eq, inputs)


def _einsum_engine(node, eq, xs):
    """Einsum as broadcast multiply + sum over the engine: each operand is permuted into one
    shared letter order, multiplied with broadcasting, and summed over the contracted letters."""
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if any("." in t for t in terms):
        terms, rhs = _expand_ellipsis(terms, rhs if _ else None, [x.ndim for x in xs])
    elif not _:
        letters = sorted(set("".join(terms)))
        rhs = "".join(c for c in letters if "".join(terms).count(c) == 1)
    order = list(dict.fromkeys(rhs + "".join(terms)))
    out = None
    for term, x in zip(terms, xs, strict=True):
        for c in set(term):
            while term.count(c) > 1:  # a repeated letter takes the diagonal
                i, j = term.index(c), term.index(c, term.index(c) + 1)
                x = _diagonal(x, i, j)
                term = term[:j] + term[j + 1 :]
        perm = [term.index(c) for c in order if c in term]
        x = F.permute(x, *perm) if perm != list(range(len(perm))) else x
        shape = [x.shape[[c for c in order if c in term].index(c)] if c in term else 1
                 for c in order]  # fmt: skip
        x = F.reshape(x, tuple(shape))
        out = x if out is None else F.mul(out, x)
    contracted = tuple(i for i, c in enumerate(order) if c not in rhs)
    if contracted:
        out = F.sum(out, contracted)
    kept = [c for c in order if c in rhs]
    perm = [kept.index(c) for c in rhs]
    return F.permute(out, *perm) if perm != list(range(len(perm))) else out


def _expand_ellipsis(terms, rhs, ranks):
    """Spell '...' out in letters the equation does not use, aligned right as numpy does;
    an implicit output is the ellipsis letters, then the letters used once, sorted."""
    used = set("".join(terms) + (rhs or ""))
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    n_ell = max(r - (len(t) - 3) for t, r in zip(terms, ranks, strict=True) if "..." in t)
    ell = "".join(free[:n_ell])
    out = [t.replace("...", ell[n_ell - (r - (len(t) - 3)):]) if "..." in t else t
           for t, r in zip(terms, ranks, strict=True)]  # fmt: skip
    if rhs is None:
        named = "".join(t.replace("...", "") for t in terms)
        rhs = "..." + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    return out, rhs.replace("...", ell)


def _diagonal(x, i, j):
    n = x.shape[i]
    eye_shape = [1] * x.ndim
    eye_shape[i], eye_shape[j] = n, n
    masked = F.mul(x, wrap(np.eye(n, dtype=x.dtype).reshape(eye_shape)))
    return F.sum(masked, j)
