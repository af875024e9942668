"""Import of shape, layout, indexing and constant-making ops.

Shape arithmetic (Shape, Range, ConstantOfShape, Gather on a shape, ...) runs on numpy
constants: it carries no gradient, and the graph stays differentiable through the data path.
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from bpcli import functional as F
from bpcli.onnx.importer import minifloat
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, arr, ints, register, scalar, wrap


def _reshape(x, shape):
    return F.reshape(x, tuple(shape)) if grad(x) else wrap(x.data.reshape(shape))


@register("Reshape", since=5)
def reshape(ctx, node: NodeView, inputs):
    x, shape = inputs[0], ints(inputs[1])
    if not node.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return _reshape(x, shape)


@register("Flatten", since=1)
def flatten(ctx, node, inputs):
    x = inputs[0]
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return _reshape(x, (lead, int(np.prod(x.shape[axis:], dtype=np.int64))))


@register("Transpose")
def transpose(ctx, node, inputs):
    x = inputs[0]
    perm = node.attr("perm") or list(range(x.ndim))[::-1]
    return F.permute(x, *perm) if grad(x) else wrap(np.transpose(x.data, perm))


def _axes(node, inputs, input_since=13):
    if node.opset >= input_since:
        return ints(inputs[1]) if len(inputs) > 1 else None
    return node.attr("axes")


@register("Squeeze")
def squeeze(ctx, node, inputs):
    x, axes = inputs[0], _axes(node, inputs)
    if axes is None:
        axes = [i for i, n in enumerate(x.shape) if n == 1]
    axes = {a % x.ndim for a in axes}
    for a in axes:
        if x.shape[a] != 1:
            raise node.fail(f"cannot squeeze axis {a} of size {x.shape[a]} (shape {x.shape})")
    return _reshape(x, [n for i, n in enumerate(x.shape) if i not in axes])


@register("Unsqueeze")
def unsqueeze(ctx, node, inputs):
    x, axes = inputs[0], _axes(node, inputs)
    rank = x.ndim + len(axes)
    axes = sorted(a % rank for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return _reshape(x, shape)


@register("Concat", since=4)
def concat(ctx, node, inputs):
    xs = [t for t in inputs if t is not None]
    axis = node.attr("axis")
    if not grad(*xs):
        return wrap(np.concatenate([t.data for t in xs], axis=axis))
    xs = [t for t in xs if t.numel() or t.ndim != 1]  # ONNX allows an empty 1-D operand
    return F.concat(xs, axis)


@register("Split", since=2)
def split(ctx, node, inputs):
    x = inputs[0]
    axis = node.attr("axis", 0) % x.ndim
    n = x.shape[axis]
    sizes = ints(inputs[1]) if node.opset >= 13 and len(inputs) > 1 else node.attr("split")
    if not sizes:
        k = node.attr("num_outputs") or len(node.outputs)
        step = -(-n // k)
        sizes = [min(step, n - i * step) for i in range(k)]
    if not grad(x):
        cuts = np.cumsum(sizes)[:-1]
        return tuple(wrap(p) for p in np.split(x.data, cuts, axis=axis))
    return tuple(F.split(x, list(sizes), axis))


@register("Slice")
def slice_(ctx, node, inputs):
    x = inputs[0]
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        starts, ends = ints(inputs[1]), ints(inputs[2])
        axes = ints(inputs[3]) if len(inputs) > 3 else None
        steps = ints(inputs[4]) if len(inputs) > 4 else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        index[a % x.ndim] = slice(s, e, st)
    index = tuple(index)
    return F.getitem(x, index) if grad(x) else wrap(x.data[index])


@register("Gather")
def gather(ctx, node, inputs):
    x, idx = inputs
    axis = node.attr("axis", 0) % x.ndim
    if axis == 0 and x.ndim == 2 and idx.dtype.kind in "iu" and grad(x) and idx.numel():
        if idx.data.min() >= 0:
            # a table lookup: keep the indices a tensor so a re-export still reads the input
            return F.embedding(idx, x)
    i = idx.data.astype(np.int64)
    i = np.where(i < 0, i + x.shape[axis], i)
    index = (slice(None),) * axis + (i,)
    if not grad(x):
        return wrap(x.data[index])
    if i.ndim == 0:
        return F.getitem(x, (slice(None),) * axis + (int(i),))
    return F.getitem(x, index)


@register("GatherElements", since=11)
def gather_elements(ctx, node, inputs):
    x, idx = inputs
    axis = node.attr("axis", 0) % x.ndim
    if not grad(x):  # numpy reads negative indices from the end, as ONNX does
        return wrap(np.take_along_axis(x.data, idx.data.astype(np.int64), axis))
    # the engine wraps negative indices itself and keeps the index tensor on the tape when it
    # can use it as it is (an ArgMax's, say), so an export computes it too
    return F.gather(x, axis, idx)


@register("Shape")
def shape(ctx, node, inputs):
    s = np.array(inputs[0].shape, dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end")
    return wrap(s[start:end])


@register("Size")
def size(ctx, node, inputs):
    return wrap(np.array(inputs[0].numel(), dtype=np.int64))


@register("Constant")
def constant(ctx, node, inputs):
    return wrap(constant_value(node))


def constant_value(node: NodeView) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        return a["value"]
    if "value_float" in a:
        return np.array(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], dtype=np.int64)
    if "value_string" in a:
        return np.array(a["value_string"], dtype=object)
    if "value_strings" in a:
        return np.array(a["value_strings"], dtype=object)
    raise node.fail("Constant without a supported value attribute")


@register("ConstantOfShape", since=9)
def constant_of_shape(ctx, node, inputs):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else value
    return wrap(np.full(ints(inputs[0]), value.reshape(-1)[0], dtype=value.dtype))


@register("Range", since=11)
def range_(ctx, node, inputs):
    vals = [arr(t, node, what) for t, what in zip(inputs, ("start", "limit", "delta"), strict=True)]
    for v, what in zip(vals, ("start", "limit", "delta"), strict=True):
        if v.size != 1:  # a one-element 1-D tensor is taken too, as onnxruntime takes it
            raise node.fail(f"{what} must be a scalar, got shape {list(v.shape)}")
    start, limit, delta = (v.reshape(()) for v in vals)
    return wrap(np.arange(start, limit, delta).astype(start.dtype))


@register("Expand", since=8)
def expand(ctx, node, inputs):
    x, target = inputs[0], ints(inputs[1])
    out = np.broadcast_shapes(x.shape, tuple(target))
    if not grad(x):
        return wrap(np.broadcast_to(x.data, out).copy())
    return x if out == x.shape else F.expand(x, *out)


@register("Tile", since=6)
def tile(ctx, node, inputs):
    x, reps = inputs[0], ints(inputs[1])
    return F.tile(x, tuple(reps)) if grad(x) else wrap(np.tile(x.data, reps))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
_NP_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@register("Pad", since=2)
def pad(ctx, node, inputs):
    x = inputs[0]
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        pads, value = node.attr("pads") or node.attr("paddings"), node.attr("value", 0.0)
        axes = None
    else:
        pads = ints(inputs[1])
        value = scalar(inputs[2] if len(inputs) > 2 else None, 0.0)
        axes = ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else None
    axes = [a % x.ndim for a in axes] if axes is not None else list(range(x.ndim))
    k = len(axes)
    width = [(0, 0)] * x.ndim
    for j, a in enumerate(axes):
        width[a] = (pads[j], pads[j + k])
    if not grad(x):
        return wrap(_np_pad(x.data, width, _NP_MODES[mode], value))
    torch_pad = []
    for b, a in reversed(width):
        torch_pad += [b, a]
    return F.pad(x, torch_pad, _PAD_MODES[mode], float(value))


def _np_pad(a, width, mode, value):
    crop = tuple(slice(-b if b < 0 else 0, a.shape[i] + e if e < 0 else None)
                 for i, (b, e) in enumerate(width))  # fmt: skip
    a = a[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "constant":
        return np.pad(a, width, mode, constant_values=value).astype(a.dtype)
    return np.pad(a, width, mode)


@register("Cast", "CastLike", since=6)
def cast(ctx, node, inputs):
    x = inputs[0]
    if node.op_type == "CastLike":
        to = inputs[1].dtype
    else:
        to = np.dtype(helper.tensor_dtype_to_np_dtype(node.attr("to")))
    if to == x.dtype:
        return x
    if to.kind == "O" or x.dtype.kind == "O":
        raise node.fail(f"casts between strings and {x.dtype if to.kind == 'O' else to}")
    if grad(x) and to.kind == "f" and to.itemsize >= 4:
        return F.astype(x, to)
    if grad(x):
        ctx.module._note_nograd(node)  # no gradient flows through a cast to ints or narrow floats
    saturate = bool(node.attr("saturate", 1))
    return wrap(minifloat.cast(x.data, to, saturate, node.attr("round_mode", "up")))


@register("BitCast", since=26)
def bitcast(ctx, node, inputs):
    x = inputs[0].data
    to = np.dtype(helper.tensor_dtype_to_np_dtype(node.attr("to")))
    if to.kind == "O" or x.dtype.kind == "O" or to.itemsize != x.dtype.itemsize:
        raise node.fail(f"cannot reinterpret {x.dtype} as {to}: both need the same bit width "
                        f"and neither may be a string")  # fmt: skip
    # the bytes as they are (little endian, as the spec asks, on every machine bpcli runs on)
    return wrap(np.ascontiguousarray(x).view(to).reshape(x.shape))


@register("DepthToSpace", since=1)
def depth_to_space(ctx, node, inputs):
    x, b = inputs[0], node.attr("blocksize")
    n, c, h, w = x.shape
    if node.attr("mode", "DCR") == "DCR":
        y = F.reshape(x, (n, b, b, c // (b * b), h, w))
        y = F.permute(y, 0, 3, 4, 1, 5, 2)
    else:
        y = F.reshape(x, (n, c // (b * b), b, b, h, w))
        y = F.permute(y, 0, 1, 4, 2, 5, 3)
    return F.reshape(y, (n, c // (b * b), h * b, w * b))


@register("SpaceToDepth", since=1)
def space_to_depth(ctx, node, inputs):
    x, b = inputs[0], node.attr("blocksize")
    n, c, h, w = x.shape
    y = F.reshape(x, (n, c, h // b, b, w // b, b))
    crd = node.attr("mode", "DCR") == "CRD"
    y = F.permute(y, *((0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4)))
    return F.reshape(y, (n, c * b * b, h // b, w // b))


@register("Trilu", since=14)
def trilu(ctx, node, inputs):
    x = inputs[0]
    k = scalar(inputs[1] if len(inputs) > 1 else None, 0)
    rows, cols = x.shape[-2:]
    tri = np.triu if node.attr("upper", 1) else np.tril
    mask = tri(np.ones((rows, cols), bool), k)
    if not grad(x):
        return wrap(np.where(mask, x.data, np.zeros((), x.dtype)))
    return F.mul(x, wrap(mask.astype(x.dtype)))


@register("NonZero", since=9)
def nonzero(ctx, node, inputs):
    return wrap(np.array(np.nonzero(inputs[0].data), dtype=np.int64).reshape(inputs[0].ndim, -1))


@register("OneHot", since=9)
def one_hot(ctx, node, inputs):
    idx, depth, values = inputs[0].data, int(scalar(inputs[1])), inputs[2].data
    axis = node.attr("axis", -1)
    idx = np.where(idx < 0, idx + depth, idx).astype(np.int64)
    hot = (idx[..., None] == np.arange(depth)).astype(bool)
    out = np.where(hot, values[1], values[0])
    return wrap(np.moveaxis(out, -1, axis % out.ndim))


@register("EyeLike", since=9)
def eye_like(ctx, node, inputs):
    x = inputs[0]
    dt = node.attr("dtype")
    dt = x.dtype if dt is None else np.dtype(helper.tensor_dtype_to_np_dtype(dt))
    return wrap(np.eye(*x.shape, k=node.attr("k", 0), dtype=dt))


def tensor_attr(t) -> np.ndarray:
    return numpy_helper.to_array(t)
