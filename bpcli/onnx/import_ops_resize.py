"""Import of resampling ops: Resize (opsets 10-19), Upsample (7-10), GridSample (16-22),
AffineGrid (20), CenterCropPad (18) and Col2Im (18).

Resize is separable: each resized axis is a linear map built in numpy from the shapes alone, an
(out, in) weight matrix applied with matmul (an index vector and index_select for nearest), so
the gradient w.r.t. X is exact. Col2Im is separable the same way, one 0/1 matrix per spatial
axis. GridSample gathers the 2^r (4^r for cubic) taps of every sampling point at once and
weights them with engine ops computed from the grid, so the grid gets a gradient too (zero for
nearest, as in torch). Tap positions, floors and masks carry no gradient and stay numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bpcli import functional as F
from bpcli.onnx.import_ops import NodeView, arr, ints, norm_axis, register, wrap
from bpcli.onnx.import_ops_math import grad

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


def _kernel(p: _Resample):
    if p.mode == "linear":
        return (lambda d: np.maximum(0.0, 1.0 - np.abs(d))), 1
    a = p.a

    def keys(d):  # Keys' cubic convolution kernel
        d = np.abs(d)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

    return keys, 2


def _weights(p: _Resample, ax: _Axis, x: np.ndarray) -> np.ndarray:
    """The (out, in) matrix of a linear or cubic resample; taps past the edges repeat it."""
    kern, support = _kernel(p)
    # antialias stretches the kernel by 1 / scale when shrinking, so more inputs contribute
    s = min(ax.scale, 1.0) if p.antialias else 1.0
    reach = int(np.ceil(support / s))
    j = np.floor(x)[:, None] + np.arange(-reach, reach + 1)
    w = kern((j - x[:, None]) * s)
    if p.antialias:
        w = w / w.sum(axis=1, keepdims=True)
    if p.exclude:
        w = np.where((j < 0) | (j >= ax.n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    m = np.zeros((len(x), ax.n_in))
    rows = np.repeat(np.arange(len(x)), j.shape[1])
    np.add.at(m, (rows, np.clip(j, 0, ax.n_in - 1).astype(np.int64).ravel()), w.ravel())
    return m


def _matmul_along(y, axis: int, m: np.ndarray):
    """``m @ y`` along one axis of y."""
    shape = y.shape
    n_out, n_in = m.shape
    new = (*shape[:axis], n_out, *shape[axis + 1 :])
    if axis == y.ndim - 1:
        return F.matmul(y, wrap(np.ascontiguousarray(m.T).astype(y.dtype)))
    pre, post = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1 :]))
    out = F.matmul(wrap(m.astype(y.dtype)), F.reshape(y, (pre, n_in, post)))
    return F.reshape(out, new)


def _resize_axis(y, p: _Resample, ax: _Axis):
    x = _source(p, ax)
    if p.mode == "nearest":
        rule = p.nearest or ("ceil" if ax.scale < 1 else "floor")
        idx = np.clip(_NEAREST[rule](x), 0, ax.n_in - 1).astype(np.int64)
        if ax.n_out != ax.n_in or not np.array_equal(idx, np.arange(ax.n_in)):
            y = F.index_select(y, ax.axis, idx)
    else:
        m = _weights(p, ax, x)
        if m.shape[0] != m.shape[1] or not np.array_equal(m, np.eye(ax.n_in)):
            y = _matmul_along(y, ax.axis, m)
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
    has_scales = scales is not None and scales.size > 0
    if has_scales == (sizes is not None and sizes.size > 0):
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


# -- GridSample and AffineGrid ----------------------------------------------------------------

_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
               "nearest": "nearest"}  # fmt: skip


def _fold(v: np.ndarray, lo: float, hi: float, size: int, pad: str):
    """(sign, offset) with fold(v) = sign * v + offset: where an outside coordinate lands."""
    below, above = v < lo, v > hi
    if pad == "border":
        return np.where(below | above, 0, 1), np.where(below | above, np.clip(v, 0, size - 1), 0)
    span = hi - lo
    if span <= 0:  # a single pixel with align_corners: every reflection lands on it
        return np.zeros_like(v), np.full_like(v, lo)
    k = np.floor(np.where(below, lo - v, v - hi) / span)  # whole spans crossed
    odd = k % 2 == 1
    # an even number of crossings mirrors v about the near edge; an odd one shifts it
    sign = np.where(below | above, np.where(odd, 1, -1), 1)
    off_below = np.where(odd, hi - lo + k * span, 2 * lo - k * span)
    off_above = np.where(odd, lo - hi - k * span, 2 * hi + k * span)
    return sign, np.where(below, off_below, np.where(above, off_above, 0))


def _tap(i: np.ndarray, size: int, pad: str, lo: float, hi: float):
    """Integer tap positions -> (index into the axis, 0/1 weight of the tap)."""
    if pad == "reflection":
        sign, off = _fold(i.astype(np.float64), lo, hi, size, pad)
        i = np.trunc(sign * i + off).astype(np.int64)
    valid = (i >= 0) & (i < size) if pad == "zeros" else np.ones(i.shape, bool)
    return np.clip(i, 0, size - 1), valid


def _poly(t, coefs):  # Horner on a tensor, coefficients from the highest power down
    acc = F.add(F.mul(t, coefs[0]), coefs[1])
    for c in coefs[2:]:
        acc = F.add(F.mul(acc, t), c)
    return acc


def _cubic_taps(t, a=-0.75):
    near, far = [a + 2, -(a + 3), 0.0, 1.0], [a, -5 * a, 8 * a, -4 * a]
    one_t = F.sub(1.0, t)
    return [_poly(F.add(t, 1.0), far), _poly(t, near), _poly(one_t, near),
            _poly(F.add(one_t, 1.0), far)]  # fmt: skip


def _grid_axis(coord, size: int, mode: str, pad: str, align: bool):
    """One spatial axis: tap indices (n, q, k), their 0/1 validity and weights (Tensor|None)."""
    a, lo, hi = ((size - 1) / 2, 0.0, size - 1.0) if align else (size / 2, -0.5, size - 0.5)
    x = F.add(F.mul(coord, a), (size - 1) / 2)
    if mode == "nearest":
        v = np.rint(x.data)  # half to even, as torch
        if pad != "zeros":
            sign, off = _fold(v, lo, hi, size, pad)
            v = sign * v + off
        idx, valid = _tap(np.trunc(v).astype(np.int64)[..., None], size, pad, lo, hi)
        return idx, valid, None
    if pad != "zeros" and mode == "linear":
        # NOTE: cubic folds only its taps, not the point (as torch and onnxruntime; the onnx
        # reference folds both, which differs for border padding)
        sign, off = _fold(x.data, lo, hi, size, pad)
        if not (np.all(sign == 1) and not off.any()):
            x = F.add(F.mul(x, wrap(sign.astype(x.dtype))), wrap(off.astype(x.dtype)))
    base = np.floor(x.data)
    t = F.sub(x, wrap(base))
    taps = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
    idx, valid = _tap(base.astype(np.int64)[..., None] + np.array(taps), size, pad, lo, hi)
    w = [F.sub(1.0, t), t] if mode == "linear" else _cubic_taps(t)
    return idx, valid, F.stack(w, axis=-1)


def _outer(a, b, shape):  # (n, q, ka) x (n, q, kb) -> (n, q, ka * kb)
    n, q = shape
    return F.reshape(F.mul(F.reshape(a, (n, q, -1, 1)), F.reshape(b, (n, q, 1, -1))), (n, q, -1))


@register("GridSample", since=16)
def grid_sample(ctx, node: NodeView, inputs):
    x, grid = inputs
    mode = _check(node, "mode", node.attr("mode", "linear"), tuple(_GRID_MODES))
    mode = _GRID_MODES[mode]
    pad = _check(node, "padding_mode", node.attr("padding_mode", "zeros"),
                 ("zeros", "border", "reflection"))  # fmt: skip
    align = bool(node.attr("align_corners", 0))
    r = x.ndim - 2
    if r < 1 or grid.ndim != r + 2 or grid.shape[-1] != r or grid.shape[0] != x.shape[0]:
        raise node.fail(f"grid of shape {grid.shape} does not fit X of shape {x.shape}")
    if x.dtype.kind != "f":  # integer images: sample in float64, round back
        return _round_to(grid_sample(ctx, node, [wrap(x.data.astype(np.float64)), grid]), x.dtype)
    n, c, dims, out = x.shape[0], x.shape[1], x.shape[2:], grid.shape[1:-1]
    q = int(np.prod(out))
    if 0 in x.shape or q == 0:
        return wrap(np.zeros((n, c, *out), x.dtype))
    g = F.reshape(grid if grad(grid) else wrap(grid.data), (n, q, r))
    flat, valid, w = np.zeros((n, q, 1), np.int64), np.ones((n, q, 1), bool), None
    for d in range(r):  # grid components run innermost axis first
        coord = F.getitem(g, (slice(None), slice(None), r - 1 - d))
        i, v, wd = _grid_axis(coord, dims[d], mode, pad, align)
        flat = (flat[..., :, None] * dims[d] + i[..., None, :]).reshape(n, q, -1)
        valid = (valid[..., :, None] & v[..., None, :]).reshape(n, q, -1)
        w = wd if w is None else (w if wd is None else _outer(w, wd, (n, q)))
    k = flat.shape[-1]
    weight = wrap(valid.astype(x.dtype))
    if w is not None:
        w = F.mul(w, wrap(valid.astype(w.dtype)))
        weight = w if w.dtype == x.dtype else F.astype(w, x.dtype)
    xf = F.reshape(x if grad(x) else wrap(x.data), (n, c, -1))
    index = np.broadcast_to(flat.reshape(n, 1, q * k), (n, c, q * k))
    vals = F.reshape(F.gather(xf, 2, np.ascontiguousarray(index)), (n, c, q, k))
    y = F.sum(F.mul(vals, F.reshape(weight, (n, 1, q, k))), axis=3)
    return F.reshape(y, (n, c, *out))


def _linspace(size: int, align: bool) -> np.ndarray:
    if size <= 1:
        return np.zeros(size)  # torch's choice for one step, with or without align_corners
    if align:
        return np.linspace(-1.0, 1.0, size)
    return (2 * np.arange(size) + 1) / size - 1


@register("AffineGrid", since=20)
def affine_grid(ctx, node, inputs):
    theta, size = inputs[0], ints(inputs[1])
    align = bool(node.attr("align_corners", 0))
    spatial = size[2:]
    r = len(spatial)
    if r not in (2, 3) or theta.shape != (size[0], r, r + 1):
        raise node.fail(f"theta of shape {theta.shape} does not fit size {size}")
    mesh = np.meshgrid(*[_linspace(s, align) for s in spatial], indexing="ij")
    cols = [m.reshape(-1) for m in mesh[::-1]]  # x (innermost axis) first
    base = np.stack([*cols, np.ones(cols[0].shape)], axis=1).astype(theta.dtype)
    g = F.matmul(wrap(base), F.transpose(theta, 0, 2, 1))  # (P, r+1) @ (N, r+1, r)
    return F.reshape(g, (size[0], *spatial, r))


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
        y = F.transpose(y, *perm)
        y = F.reshape(y, (*y.shape[:-2], block[d] * nblk[d]))
        m = _fold_matrix(block[d], nblk[d], image[d], strides[d], dils[d], pads[d])
        y = F.matmul(y, wrap(m.astype(y.dtype)))
    return y
