"""Import of scans, scatters and index-driven ops: CumSum, CumProd, ScatterElements, ScatterND,
Scatter, GatherND, ReverseSequence, Compress, MaxUnpool, and LpNormalization, Shrink, Det.

Where nothing needs a gradient the op runs on numpy (this keeps integer and bfloat16 values
as they are). Otherwise indices become integer arrays computed on numpy, and the values move
through engine ops: getitem and index_select gather, ``index_add`` scatters with accumulation,
``cumsum``/``cumprod`` scan, so backward reaches data and updates alike.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.engine.ops.scan import cumprod, cumprod_array, cumsum, cumsum_array
from bpcli.engine.ops.scatter import index_add
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, ints, norm_axis, register, scalar, wrap


def _indices(a: np.ndarray, n, node: NodeView, what: str = "indices") -> np.ndarray:
    """Integer indices with negatives counted from the end, checked against size(s) ``n``."""
    i = np.asarray(a).astype(np.int64)
    bad = (i < -n) | (i >= n)
    if bad.any():
        raise node.fail(f"{what} value {int(i[bad][0])} is out of range for size(s) {n}")
    return np.where(i < 0, i + n, i)


# -- scans -------------------------------------------------------------------------------------


_SCANS = {"CumSum": (cumsum, cumsum_array), "CumProd": (cumprod, cumprod_array)}


@register("CumSum", since=11)
@register("CumProd", since=26)
def scan(ctx, node: NodeView, inputs):
    x, axis = inputs[0], scalar(inputs[1])
    if x.ndim == 0:
        raise node.fail("input must have at least one dim")
    axis = norm_axis(int(axis), x.ndim, node)
    exclusive, reverse = bool(node.attr("exclusive", 0)), bool(node.attr("reverse", 0))
    engine_fn, np_fn = _SCANS[node.op_type]
    if grad(x):
        return engine_fn(x, axis, exclusive, reverse)
    return wrap(np_fn(x.data, axis, exclusive, reverse))


# -- scatters ----------------------------------------------------------------------------------

_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _reduction_check(node: NodeView) -> str | None:
    r = node.attr("reduction", "none")
    if r not in ("none", *_UFUNCS) or (r in ("max", "min") and node.opset < 18):
        return f"reduction {r!r} is not defined at opset {node.opset}"
    return None


def _scatter_rows(node, table, rows: np.ndarray, upd, reduction: str):
    """``table`` (R, C) with the rows of ``upd`` (m, C) put at ``rows`` (m,) by ``reduction``."""
    if not grad(table, upd):
        out = table.data.copy()
        if reduction == "none":
            out[rows] = upd.data  # NOTE: with repeated rows the last update wins
        else:
            _UFUNCS[reduction].at(out, rows, upd.data)
        return wrap(out)
    if reduction == "none":
        # out = [table; upd][src]: each row read from the table or from its (last) update
        src = np.arange(table.shape[0])
        src[rows] = table.shape[0] + np.arange(len(rows))
        return F.getitem(F.concat([table, upd], 0), src)
    if reduction == "add":
        return index_add(table, 0, rows, upd)
    if reduction == "mul":
        return _scatter_mul(table, rows, upd)
    return _scatter_extreme(table, rows, upd, reduction)


def _scatter_mul(table, rows, upd):
    """table * the product of each row's updates, one gather per repeat of a row (a product
    of engine ops, so the gradient is exact even where an update is zero)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    rank = np.empty_like(rows)
    rank[order] = np.arange(len(rows)) - first  # how many earlier updates hit the same row
    ones = wrap(np.ones((1, table.shape[1]), table.dtype))
    padded = F.concat([ones, upd], 0)
    out = table
    for r in range(int(rank.max()) + 1 if len(rows) else 0):
        src = np.zeros(table.shape[0], np.int64)
        src[rows[rank == r]] = 1 + np.nonzero(rank == r)[0]
        out = F.mul(out, F.getitem(padded, src))
    return out


def _scatter_extreme(table, rows, upd, reduction):
    """max/min as a weighted sum: the gradient is split evenly among the values equal to the
    result (as torch.scatter_reduce with include_self), the forward value is numpy's exact one."""
    exact = table.data.copy()
    _UFUNCS[reduction].at(exact, rows, upd.data)
    w_table = (table.data == exact).astype(table.dtype)
    w_upd = (upd.data == exact[rows]).astype(table.dtype)
    count = w_table.copy()
    np.add.at(count, rows, w_upd)
    count = np.maximum(count, 1)  # a NaN result matches nothing
    y = index_add(_weighted(table, w_table / count), 0, rows, _weighted(upd, w_upd / count[rows]))
    # the weights sum to 1 only up to rounding; an infinite result needs no correction
    fix = np.zeros_like(exact)
    ok = np.isfinite(y.data)
    fix[ok] = exact[ok] - y.data[ok]
    return F.add(y, wrap(fix))


def _weighted(x, w: np.ndarray):
    # where() first: an infinite value that lost must contribute 0, not inf * 0 = NaN
    return F.mul(F.where(w > 0, x, 0.0), wrap(w))


def _flat(x):
    return F.reshape(x, (x.numel(), 1)) if grad(x) else wrap(x.data.reshape(-1, 1))


@register("ScatterElements", since=11, check=_reduction_check)
@register("Scatter", since=9)
def scatter_elements(ctx, node, inputs):
    data, idx, upd = inputs
    if not (data.ndim == idx.ndim == upd.ndim) or idx.shape != upd.shape:
        raise node.fail(f"data {data.shape}, indices {idx.shape} and updates {upd.shape} "
                        "need one rank, and indices the shape of updates")  # fmt: skip
    axis = norm_axis(node.attr("axis", 0), data.ndim, node)
    if any(n > m for d, (n, m) in enumerate(zip(idx.shape, data.shape)) if d != axis):
        raise node.fail(f"indices {idx.shape} are larger than data {data.shape} off axis {axis}")
    coords = list(np.indices(idx.shape))
    coords[axis] = _indices(idx.data, data.shape[axis], node)
    flat = np.ravel_multi_index(coords, data.shape).reshape(-1)
    out = _scatter_rows(node, _flat(data), flat, _flat(upd), node.attr("reduction", "none"))
    return F.reshape(out, data.shape) if grad(out) else wrap(out.data.reshape(data.shape))


@register("ScatterND", since=11, check=_reduction_check)
def scatter_nd(ctx, node, inputs):
    data, idx, upd = inputs
    k = idx.shape[-1] if idx.ndim else 0
    if idx.ndim < 1 or not 1 <= k <= data.ndim:
        raise node.fail(f"indices {idx.shape} need a last dim in 1..{data.ndim}")
    want = idx.shape[:-1] + data.shape[k:]
    if upd.shape != want:
        raise node.fail(f"updates have shape {upd.shape}, expected {want}")
    lead = np.array(data.shape[:k])
    tup = _indices(idx.data.reshape(-1, k), lead, node)
    rows = np.ravel_multi_index(tup.T, data.shape[:k]) if tup.size else np.zeros(0, np.int64)
    width = int(np.prod(data.shape[k:], dtype=np.int64))
    table_shape, upd_shape = (int(np.prod(lead)), width), (len(rows), width)
    if grad(data, upd):
        table, u = F.reshape(data, table_shape), F.reshape(upd, upd_shape)
    else:
        table, u = wrap(data.data.reshape(table_shape)), wrap(upd.data.reshape(upd_shape))
    out = _scatter_rows(node, table, rows, u, node.attr("reduction", "none"))
    return F.reshape(out, data.shape) if grad(out) else wrap(out.data.reshape(data.shape))


# -- gathers and selections --------------------------------------------------------------------


@register("GatherND", since=11)
def gather_nd(ctx, node, inputs):
    data, idx = inputs
    b = node.attr("batch_dims", 0)
    k = idx.shape[-1] if idx.ndim else 0
    if idx.ndim < 1 or not b < min(idx.ndim, data.ndim) or not 1 <= k <= data.ndim - b:
        raise node.fail(f"indices {idx.shape} with batch_dims {b} do not fit data {data.shape}")
    if idx.shape[:b] != data.shape[:b]:
        raise node.fail(f"batch dims differ: indices {idx.shape}, data {data.shape}")
    sizes = np.array(data.shape[b : b + k])
    cols = _indices(idx.data, sizes, node)
    q = idx.ndim - 1
    batch = [np.arange(n).reshape([n if d == i else 1 for d in range(q)])
             for i, n in enumerate(data.shape[:b])]  # fmt: skip
    index = (*batch, *(cols[..., j] for j in range(k)))
    return F.getitem(data, index) if grad(data) else wrap(data.data[index])


@register("ReverseSequence", since=10)
def reverse_sequence(ctx, node, inputs):
    x, lens = inputs
    t_axis, b_axis = node.attr("time_axis", 0), node.attr("batch_axis", 1)
    if {t_axis, b_axis} != {0, 1} or x.ndim < 2:
        raise node.fail(f"time_axis {t_axis} and batch_axis {b_axis} must be 0 and 1 "
                        f"(input rank {x.ndim})")  # fmt: skip
    t_len, n = x.shape[t_axis], x.shape[b_axis]
    lens = lens.data.astype(np.int64).reshape(-1)
    if lens.shape != (n,) or (lens < 0).any() or (lens > t_len).any():
        raise node.fail(f"sequence_lens {lens.tolist()} do not fit {n} sequences of {t_len}")
    t = np.arange(t_len)[:, None]
    src = np.where(t < lens, lens - 1 - t, t)  # (time, batch)
    bat = np.broadcast_to(np.arange(n), src.shape)
    index = (src, bat) if t_axis == 0 else (bat.T, src.T)
    return F.getitem(x, index) if grad(x) else wrap(x.data[index])


@register("Compress", since=9)
def compress(ctx, node, inputs):
    x, cond = inputs
    axis = node.attr("axis")
    if axis is None:
        x = F.reshape(x, (x.numel(),)) if grad(x) else wrap(x.data.reshape(-1))
        axis = 0
    axis = norm_axis(axis, x.ndim, node)
    keep = np.nonzero(cond.data.reshape(-1))[0]
    if keep.size and keep[-1] >= x.shape[axis]:
        raise node.fail(f"condition selects index {keep[-1]} of an axis of {x.shape[axis]}")
    return F.index_select(x, axis, keep) if grad(x) else wrap(np.take(x.data, keep, axis))


@register("MaxUnpool", since=9)
def max_unpool(ctx, node, inputs):
    """Positions in ``I`` are flat indices into the output (as onnxruntime and torch read them;
    onnx's reference unpools into the inferred shape and pads, which differs when an
    ``output_shape`` larger than the inferred one is given)."""
    x, idx = inputs[0], inputs[1]
    out_shape = ints(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else None
    if out_shape is None:
        out_shape = _unpool_shape(node, x.shape)
    if len(out_shape) != x.ndim or idx.shape != x.shape:
        raise node.fail(f"output shape {out_shape} and indices {idx.shape} do not fit X {x.shape}")
    size = int(np.prod(out_shape, dtype=np.int64))
    pos = _indices(idx.data.reshape(-1), size, node, "I").astype(np.int64)
    if not grad(x):
        y = np.zeros(size, x.dtype)
        y[pos] = x.data.reshape(-1)
        return wrap(y.reshape(out_shape))
    src = np.zeros(size, np.int64)
    src[pos] = 1 + np.arange(x.numel())  # NOTE: a repeated position keeps the last value
    padded = F.concat([wrap(np.zeros(1, x.dtype)), F.reshape(x, (x.numel(),))], 0)
    return F.reshape(F.getitem(padded, src), tuple(out_shape))


def _unpool_shape(node, shape) -> list[int]:
    kernel = node.attr("kernel_shape")
    if not kernel:
        raise node.fail("kernel_shape is required")
    k = len(kernel)
    strides = node.attr("strides") or [1] * k
    pads = node.attr("pads") or [0] * (2 * k)
    spatial = [(shape[2 + d] - 1) * strides[d] - pads[d] - pads[k + d] + kernel[d]
               for d in range(k)]  # fmt: skip
    return [*shape[:2], *spatial]


# -- elementwise and matrix ops driven by masks ------------------------------------------------


def _lp_check(node):
    p = node.attr("p", 2)
    return None if p in (1, 2) else f"p={p} (ONNX defines only 1 and 2)"


@register("LpNormalization", since=1, check=_lp_check)
def lp_normalization(ctx, node, inputs):
    """y = x / ||x||_p along axis; 0 where the norm is 0 (so is x there)."""
    x = inputs[0]
    axis = norm_axis(node.attr("axis", -1), x.ndim, node)
    p = node.attr("p", 2)
    if not grad(x):
        a = x.data
        n = (
            np.sum(np.abs(a), axis, keepdims=True)
            if p == 1
            else np.sqrt(np.sum(a * a, axis, keepdims=True))
        )
        return wrap(np.where(n == 0, 0, a / np.where(n == 0, 1, n)).astype(x.dtype))
    n = F.norm(x, p, axis=axis, keepdims=True)
    return F.div(x, F.where(n.data == 0, 1.0, n))


@register("Shrink", since=9)
def shrink(ctx, node, inputs):
    """y = x + bias where x < -lambd, x - bias where x > lambd, else 0."""
    x = inputs[0]
    lambd, bias = node.attr("lambd", 0.5), node.attr("bias", 0.0)
    lo, hi = x.data < -lambd, x.data > lambd
    if not grad(x):
        a = x.data.astype(np.float64) if x.dtype.kind in "iu" else x.data
        y = np.where(lo, a + bias, np.where(hi, a - bias, 0))
        return wrap(y.astype(x.dtype))
    return F.where(lo, F.add(x, bias), F.where(hi, F.sub(x, bias), 0.0))


@register("Det", since=11)
def det(ctx, node, inputs):
    x = inputs[0]
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise node.fail(f"input must be [*, M, M], got {x.shape}")
    if not grad(x):
        return wrap(np.asarray(np.linalg.det(x.data)).astype(x.dtype))
    return _det(x)


def _det(x):
    """det by Gaussian elimination with partial pivoting, as engine ops: each step swaps the
    largest pivot up (a constant permutation), keeps the pivot and takes the Schur complement.
    NOTE: exact gradients for invertible matrices; at a singular one whose zero pivot is not
    the last, the gradient misses the cofactors that a perturbation would bring in."""
    batch, m = x.shape[:-2], x.shape[-1]
    nb = int(np.prod(batch, dtype=np.int64))
    s = F.reshape(x, (nb, m, m))
    sign = np.ones(nb, x.dtype)
    rows = np.arange(nb)[:, None]
    out = wrap(np.ones(nb, x.dtype))
    while m > 1:
        p = np.argmax(np.abs(s.data[:, :, 0]), axis=1)
        perm = np.tile(np.arange(m), (nb, 1))
        perm[:, 0], perm[np.arange(nb), p] = p, 0
        sign = np.where(p != 0, -sign, sign)
        s = F.getitem(s, (rows, perm))
        pivot = F.getitem(s, (slice(None), 0, 0))
        out = F.mul(out, pivot)
        # a zero pivot means a zero column: det is 0 and the update below is 0 / 1
        safe = F.where(pivot.data == 0, 1.0, pivot)
        col = F.div(F.getitem(s, (slice(None), slice(1, None), slice(0, 1))),
                    F.reshape(safe, (nb, 1, 1)))  # fmt: skip
        row = F.getitem(s, (slice(None), slice(0, 1), slice(1, None)))
        s = F.sub(F.getitem(s, (slice(None), slice(1, None), slice(1, None))), F.mul(col, row))
        m -= 1
    if m == 1:
        out = F.mul(out, F.reshape(s, (nb,)))
    return F.reshape(F.mul(out, wrap(sign)), batch)
