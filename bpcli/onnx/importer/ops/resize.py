"""Import of resampling ops: Resize (opsets 10-19), Upsample (7-10), CenterCropPad (18) and
Col2Im (18); GridSample and AffineGrid are in ``grid``.

Resize is separable: each resized axis is a linear map built in numpy from the shapes alone, an
(out, in) weight matrix applied with matmul (an index vector and index_select for nearest), so
the gradient w.r.t. X is exact; the matrices and their product are the engine interpolate's
(``engine/ops/resample.py``), only the ONNX coordinate rules live here. Col2Im is separable
the same way, one 0/1 matrix per spatial axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bpcli import functional as F
from bpcli.engine.ops.resample import matmul_along, resample_matrix
from bpcli.onnx.importer.table import NodeView, arr, ints, norm_axis, register, wrap
from bpcli.onnx.importer.ops.elementwise import grad

# -- Resize and Upsample ---------------------------------------------------------------------

_NEAREST = {
    "round_prefer_floor": lambda x: np.ceil(x - 0.5),
    "round_prefer_ceil": lambda x: np.floor(x + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}
_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
           "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")  # fmt: skip


@dataclass(frozen=True)
class _Resample:
    mode: str  # nearest | linear | cubic
    coord: str = "half_pixel"
    nearest: str | None = "round_prefer_floor"  # None: opset 10's ceil when shrinking, else floor
    a: float = -0.75
    exclude: bool = False
    antialias: bool = False
    extrapolation: float = 0.0


@dataclass(frozen=True)
class _Axis:
    axis: int
    n_in: int
    n_out: int
    scale: float
    width: float  # the fractional output length the spec's formulas divide by
    roi: tuple[float, float] = (0.0, 1.0)


def _source(p: _Resample, ax: _Axis) -> np.ndarray:
    """Where each output position samples the input, in input pixel units."""
    # NOTE: float32 as onnxruntime, so nearest rounding breaks ties (2.3 on 7 pixels puts row 11
    # at 4.5 exactly) the same way; the onnx reference's float64 rounds them the other way.
    y = np.arange(ax.n_out, dtype=np.float32)
    s, n = np.float32(ax.scale), np.float32(ax.n_in)
    if p.coord == "half_pixel" or (p.coord == "pytorch_half_pixel" and ax.n_out > 1):
        return (y + 0.5) / s - 0.5
    if p.coord == "pytorch_half_pixel":
        return np.zeros_like(y)
    if p.coord == "half_pixel_symmetric":
        return n / 2 * (1 - ax.n_out / ax.width) + (y + 0.5) / s - 0.5
    if p.coord == "asymmetric":
        return y / s
    if p.coord == "tf_half_pixel_for_nn":
        return (y + 0.5) / s
    if p.coord == "align_corners":
        return y * (n - 1) / (ax.width - 1) if ax.n_out > 1 else np.zeros_like(y)
    lo, hi = ax.roi  # tf_crop_and_resize
    if ax.n_out == 1:
        return np.full(1, (lo + hi) / 2 * (n - 1))
    return lo * (n - 1) + y * (hi - lo) * (n - 1) / (ax.width - 1)


def _resize_axis(y, p: _Resample, ax: _Axis):
    x = _source(p, ax)
    if p.mode == "nearest":
        rule = p.nearest or ("ceil" if ax.scale < 1 else "floor")
        idx = np.clip(_NEAREST[rule](x), 0, ax.n_in - 1).astype(np.int64)
        if ax.n_out != ax.n_in or not np.array_equal(idx, np.arange(ax.n_in)):
            y = F.index_select(y, ax.axis, idx)
    else:
        m = resample_matrix(x, ax.n_in, p.mode, p.a, ax.scale, p.antialias, p.exclude)
        if m.shape[0] != m.shape[1] or not np.array_equal(m, np.eye(ax.n_in)):
            y = matmul_along(y, ax.axis, m)
    if p.coord == "tf_crop_and_resize":
        outside = (x < 0) | (x > ax.n_in - 1)
        if outside.any():
            shape = [1] * y.ndim
            shape[ax.axis] = ax.n_out
            y = F.where(wrap(outside.reshape(shape)), p.extrapolation, y)
    return y


def _resample(x, p: _Resample, axes: list[_Axis]):
    out_shape = list(x.shape)
    for ax in axes:
        out_shape[ax.axis] = ax.n_out
    if 0 in out_shape or 0 in x.shape:
        return wrap(np.zeros(out_shape, x.dtype))
    if x.dtype.kind != "f":  # integer images: resample in float64, round back
        y = wrap(x.data.astype(np.float64))
        for ax in axes:
            y = _resize_axis(y, p, ax)
        return _round_to(y, x.dtype)
    y = x if grad(x) else wrap(x.data)
    for ax in axes:
        y = _resize_axis(y, p, ax)
    return y


def _round_to(y, dtype):
    if dtype.kind not in "iu":
        return wrap(y.data.astype(dtype))
    info = np.iinfo(dtype)
    return wrap(np.clip(np.rint(y.data), info.min, info.max).astype(dtype))


def _scaled_axes(node, shape, axes, scales) -> list[_Axis]:
    if len(scales) != len(axes):
        raise node.fail(f"scales has {len(scales)} values for {len(axes)} axes")
    if any(not s > 0 for s in scales):
        raise node.fail(f"scales must be positive, got {list(scales)}")
    return [_Axis(a, shape[a], int(s * shape[a]), s, s * shape[a]) for a, s in zip(axes, scales)]


def _sized_axes(node, shape, axes, sizes) -> list[_Axis]:
    if len(sizes) != len(axes):
        raise node.fail(f"sizes has {len(sizes)} values for {len(axes)} axes")
    if any(shape[a] == 0 for a in axes):
        return [_Axis(a, shape[a], n, 1.0, float(n)) for a, n in zip(axes, sizes)]
    ratios = [n / shape[a] for a, n in zip(axes, sizes)]
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    if policy == "stretch":
        return [_Axis(a, shape[a], n, r, float(n)) for a, n, r in zip(axes, sizes, ratios)]
    if policy not in ("not_larger", "not_smaller"):
        raise node.fail(f"keep_aspect_ratio_policy {policy!r} is not supported")
    s = min(ratios) if policy == "not_larger" else max(ratios)
    return [_Axis(a, shape[a], int(s * shape[a] + 0.5), s, s * shape[a]) for a in axes]


def _resize_plan(node: NodeView, x, inputs) -> list[_Axis]:
    roi, scales, sizes = (list(inputs[1:4]) + [None] * 3)[:3]
    axes = node.attr("axes") if node.opset >= 18 else None
    axes = [norm_axis(a, x.ndim, node) for a in axes] if axes else list(range(x.ndim))
    has_scales = scales is not None and scales.numel() > 0
    if has_scales == (sizes is not None and sizes.numel() > 0):
        raise node.fail("exactly one of the inputs scales and sizes must be given")
    if has_scales:
        plan = _scaled_axes(node, x.shape, axes, [float(v) for v in scales.data.reshape(-1)])
    else:
        plan = _sized_axes(node, x.shape, axes, ints(sizes))
    if node.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
        r = arr(roi, node, "roi input (needed by tf_crop_and_resize)").reshape(-1)
        if r.size != 2 * len(axes):
            raise node.fail(f"roi has {r.size} values, expected {2 * len(axes)}")
        k = len(axes)
        plan = [replace(ax, roi=(float(r[i]), float(r[k + i]))) for i, ax in enumerate(plan)]
    return plan


def _check(node, key, value, allowed):
    if value not in allowed:
        raise node.fail(f"{key} {value!r} is not supported (expected one of {', '.join(allowed)})")
    return value


@register("Resize", since=10)
def resize(ctx, node: NodeView, inputs):
    x = inputs[0]
    mode = _check(node, "mode", node.attr("mode", "nearest"), ("nearest", "linear", "cubic"))
    if node.opset < 11:  # opset 10 is Upsample 9 with downscaling: asymmetric coordinates
        if mode == "cubic":
            raise node.fail("mode 'cubic' needs opset 11")
        scales = [float(v) for v in arr(inputs[1], node, "scales input").reshape(-1)]
        axes = _scaled_axes(node, x.shape, list(range(x.ndim)), scales)
        return _resample(x, _Resample(mode, "asymmetric", None), axes)
    p = _Resample(
        mode,
        _check(node, "coordinate_transformation_mode",
               node.attr("coordinate_transformation_mode", "half_pixel"), _COORDS),
        _check(node, "nearest_mode", node.attr("nearest_mode", "round_prefer_floor"),
               tuple(_NEAREST)),
        float(node.attr("cubic_coeff_a", -0.75)),
        bool(node.attr("exclude_outside", 0)),
        bool(node.attr("antialias", 0)) and mode != "nearest",
        float(node.attr("extrapolation_value", 0.0)),
    )  # fmt: skip
    return _resample(x, p, _resize_plan(node, x, inputs))


@register("Upsample", since=7)
def upsample(ctx, node, inputs):
    x = inputs[0]
    mode = node.attr("mode", "nearest")
    mode = _check(node, "mode", "linear" if mode == "bilinear" else mode, ("nearest", "linear"))
    if node.opset < 9:
        scales = node.attr("scales")
        if scales is None:
            raise node.fail("the scales attribute is required")
    else:
        scales = arr(inputs[1] if len(inputs) > 1 else None, node, "scales input").reshape(-1)
    scales = [float(v) for v in scales]
    axes = _scaled_axes(node, x.shape, list(range(x.ndim)), scales)
    return _resample(x, _Resample(mode, "asymmetric", None), axes)


# -- CenterCropPad and Col2Im -----------------------------------------------------------------


@register("CenterCropPad", since=18)
def center_crop_pad(ctx, node, inputs):
    x, shape = inputs[0], ints(inputs[1])
    axes = node.attr("axes") or list(range(x.ndim))
    if len(axes) != len(shape):
        raise node.fail(f"shape has {len(shape)} values for {len(axes)} axes")
    pads = [(0, 0)] * x.ndim
    for a, target in zip(axes, shape):
        a = norm_axis(a, x.ndim, node)
        diff = target - x.shape[a]
        # crop windows start rounded down; an odd pad puts the extra pixel on the right
        before = diff // 2 if diff >= 0 else -((-diff) // 2)
        pads[a] = (before, diff - before)
    if not grad(x):
        crop = tuple(slice(-min(b, 0), n + min(e, 0)) for (b, e), n in zip(pads, x.shape))
        return wrap(np.pad(x.data[crop], [(max(b, 0), max(e, 0)) for b, e in pads]))
    flat = [p for b, e in reversed(pads) for p in (b, e)]
    return F.pad(x, flat)


def _fold_matrix(block: int, blocks: int, size: int, stride: int, dil: int, pad: int):
    """0/1 matrix (block * blocks, size): which image position each (offset, block) lands on."""
    k, l_ = np.meshgrid(np.arange(block), np.arange(blocks), indexing="ij")
    pos = (k * dil + l_ * stride - pad).reshape(-1)
    m = np.zeros((block * blocks, size))
    inside = (pos >= 0) & (pos < size)
    m[np.nonzero(inside)[0], pos[inside]] = 1.0
    return m


@register("Col2Im", since=18)
def col2im(ctx, node, inputs):
    x, image, block = inputs[0], ints(inputs[1]), ints(inputs[2])
    r = len(image)
    strides = node.attr("strides") or [1] * r
    dils = node.attr("dilations") or [1] * r
    pads = node.attr("pads") or [0] * (2 * r)
    nblk = [(image[d] + pads[d] + pads[r + d] - dils[d] * (block[d] - 1) - 1) // strides[d] + 1
            for d in range(r)]  # fmt: skip
    k, n = int(np.prod(block)), x.shape[0]
    if x.ndim != 3 or x.shape[1] % k or x.shape[2] != int(np.prod(nblk)) or min(nblk) < 1:
        raise node.fail(f"input of shape {x.shape} does not fit image {image} and block {block}")
    c = x.shape[1] // k
    y = F.reshape(x if grad(x) else wrap(x.data), (n, c, *block, *nblk))
    for d in range(r):  # layout: (n, c, block[d:], nblk[d:], image[:d])
        rest = y.ndim - 2
        left = r - d
        perm = [0, 1, *[2 + i for i in range(rest) if i not in (0, left)], 2, 2 + left]
        y = F.permute(y, *perm)
        y = F.reshape(y, (*y.shape[:-2], block[d] * nblk[d]))
        m = _fold_matrix(block[d], nblk[d], image[d], strides[d], dils[d], pads[d])
        y = F.matmul(y, wrap(m.astype(y.dtype)))
    return y
