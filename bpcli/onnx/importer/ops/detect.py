"""Import of detection ops: NonMaxSuppression, RoiAlign, MaxRoiPool, DeformConv.

NonMaxSuppression selects box indices, integers that need no gradient: plain numpy.

RoiAlign and DeformConv sample their input bilinearly. RoiAlign's sampling points depend only
on the rois, which need no gradient, so its bilinear weights are numpy constants and the output
is engine arithmetic on X: two matmuls in avg mode (the weights separate into a row and a
column factor), a gather and a max in max mode. DeformConv's sampling points move with the
offsets, which do need a gradient: the integer corner of each point is a constant, its
fractional part is the offset minus a constant, and the bilinear weights are engine
arithmetic on that part, so d/d offset flows; the sampled columns then meet W in a matmul
(im2col).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.table import NodeView, register, scalar, wrap


def _opt(inputs, i):
    return inputs[i] if len(inputs) > i else None


# -- NonMaxSuppression -------------------------------------------------------------------------


def _box_extents(boxes: np.ndarray, center: int) -> tuple[np.ndarray, np.ndarray]:
    """Per box the low and high corner along its two axes (the order of the axes is moot)."""
    if center:  # [x_center, y_center, width, height]
        half = boxes[..., 2:] / boxes.dtype.type(2)
        return boxes[..., :2] - half, boxes[..., :2] + half
    # [y1, x1, y2, x2] with either diagonal pair of corners
    return np.minimum(boxes[..., :2], boxes[..., 2:]), np.maximum(boxes[..., :2], boxes[..., 2:])


def _nms_one(lo, hi, scores, limit: int, iou_max: float, score_min) -> list[int]:
    """Greedy NMS of one class: the best box is kept, the boxes it overlaps by IoU > iou_max
    dropped, until ``limit`` boxes are kept."""
    idx = np.arange(scores.shape[0])
    if score_min is not None:
        idx = idx[scores > score_min]
    order = idx[np.argsort(-scores[idx], kind="stable")]  # ties: the lower index first
    area = (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i, rest = order[0], order[1:]
        ext = np.minimum(hi[i], hi[rest]) - np.maximum(lo[i], lo[rest])
        inter = ext[:, 0] * ext[:, 1]
        union = area[i] + area[rest] - inter
        # NOTE: boxes that do not overlap, or are empty, never suppress (as onnxruntime)
        ok = (ext > 0).all(axis=1) & (inter > 0) & (area[i] > 0) & (area[rest] > 0) & (union > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            drop = ok & (inter / np.where(ok, union, 1) > iou_max)
        keep.append(int(i))
        order = rest[~drop]
    return keep


@register("NonMaxSuppression", since=10)
def non_max_suppression(ctx, node: NodeView, inputs):
    boxes, scores = inputs[0].data, inputs[1].data
    limit = max(int(scalar(_opt(inputs, 2), 0)), 0)
    iou_max = float(scalar(_opt(inputs, 3), 0.0))
    score_min = scalar(_opt(inputs, 4))
    center = node.attr("center_point_box", 0)
    if center not in (0, 1):
        raise node.fail(f"center_point_box={center} is not supported (0 or 1)")
    if not 0.0 <= iou_max <= 1.0:
        raise node.fail(f"iou_threshold {iou_max} is outside [0, 1]")
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3:
        raise node.fail(
            f"boxes {boxes.shape} must be (B, N, 4) and scores {scores.shape} (B, C, N)"
        )
    if scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise node.fail(f"scores {scores.shape} do not match boxes {boxes.shape}")
    lo, hi = _box_extents(boxes, center)
    out = [(b, c, i)
           for b in range(boxes.shape[0]) for c in range(scores.shape[1])
           for i in _nms_one(lo[b], hi[b], scores[b, c], limit, iou_max, score_min)]  # fmt: skip
    return wrap(np.array(out, np.int64).reshape(-1, 3))


# -- RoiAlign ----------------------------------------------------------------------------------


def _roi_axis(start, size, bins: int, grid, length: int):
    """Bilinear taps along one axis for every roi, output bin and grid sample.

    ``start``, ``size`` (R,) place each roi in input pixels, ``grid`` (R,) is its samples per
    bin. Returns ``taps`` (R, bins, G, 2), the low and high pixel of each sample, ``weights``
    of that shape (zero for a sample off the input), and ``used`` (R, 1, G), False for the
    padding past a roi's own grid: G is the largest grid, and padded samples repeat the roi's
    last one, which leaves a max unchanged.
    """
    dt = start.dtype.type
    g_max = max(int(grid.max(initial=0)), 1)
    i = np.arange(g_max)
    used = i[None, None, :] < grid[:, None, None]
    i_eff = np.minimum(i[None, :], np.maximum(grid - 1, 0)[:, None])  # (R, G)
    bin_size = size / dt(bins)
    step = bin_size / np.maximum(grid, 1).astype(start.dtype)
    # the spec's order of operations, in the rois' precision (as onnxruntime)
    bin_start = np.arange(bins, dtype=start.dtype)[None, :, None] * bin_size[:, None, None]
    pos = start[:, None, None] + bin_start + (i_eff[:, None, :] + dt(0.5)) * step[:, None, None]
    valid = (pos >= -1) & (pos <= length) & (grid > 0)[:, None, None]
    p = np.maximum(pos, 0)
    lo = np.floor(p).astype(np.int64)
    edge = lo >= length - 1
    lo = np.where(edge, length - 1, lo)
    frac = np.where(edge, 0, p - lo).astype(start.dtype)
    taps = np.stack([lo, np.where(edge, lo, lo + 1)], axis=-1)
    weights = np.stack([1 - frac, frac], axis=-1) * valid[..., None]
    return taps, weights, used


def _roi_geometry(node, rois: np.ndarray, ph: int, pw: int):
    """Start, size and samples per bin of every roi, along y and x."""
    scale = rois.dtype.type(node.attr("spatial_scale", 1.0))
    if node.opset >= 16:
        ctm = node.attr("coordinate_transformation_mode", "half_pixel")
    else:  # opset 10 knows only the legacy sampling
        ctm = "output_half_pixel"
    if ctm not in ("half_pixel", "output_half_pixel"):
        raise node.fail(f"coordinate_transformation_mode={ctm!r} is not supported")
    half = ctm == "half_pixel"
    start = rois * scale - rois.dtype.type(0.5 if half else 0.0)
    size = start[:, 2:] - start[:, :2]
    if not half:  # legacy: malformed rois are forced to 1x1
        size = np.maximum(size, 1)
    ratio = node.attr("sampling_ratio", 0)
    if ratio > 0:
        grid = np.full(size.shape, ratio, np.int64)
    else:  # adaptive: about one sample per input pixel
        grid = np.ceil(size / np.array([pw, ph], size.dtype)).astype(np.int64)
    grid = np.maximum(grid, 0)
    return start, size, grid


def _roi_avg(x, taps, weights, bidx):
    """avg mode: Y[r] = Ay[r] @ X[b_r] @ Ax[r]^T, Ay and Ax the summed tap weights per bin."""
    (ty, tx), (wy, wx) = taps, weights
    h, w = x.shape[2:]
    mats = []
    for t, wt, n in ((ty, wy, h), (tx, wx, w)):
        r, bins = t.shape[:2]
        a = np.zeros((r, bins, n), x.dtype)
        rr, bb = np.indices(t.shape[:2])
        np.add.at(a, (rr[..., None, None], bb[..., None, None], t), wt)
        mats.append(a)
    ay, ax = mats
    parts, order = [], []
    for b in np.unique(bidx):
        rows = np.nonzero(bidx == b)[0]
        xb = F.getitem(x, int(b))  # (C, H, W), broadcast over the rois of image b
        t = F.matmul(wrap(ay[rows][:, None]), xb)
        parts.append(F.matmul(t, wrap(ax[rows].transpose(0, 2, 1)[:, None])))
        order.append(rows)
    y = parts[0] if len(parts) == 1 else F.concat(parts, axis=0)
    order = np.concatenate(order)
    if np.array_equal(order, np.arange(order.size)):
        return y
    return F.index_select(y, 0, np.argsort(order))


def _roi_max(x, taps, weights, bidx):
    """max mode: per bin, the max over samples and their four corners of weight * pixel."""
    (ty, tx), (wy, wx) = taps, weights
    n, c, h, w = x.shape
    # (R, PH, PW, Gy, Gx, 2, 2): every tap pair of every sample of every bin
    pos = ty[:, :, None, :, None, :, None] * w + tx[:, None, :, None, :, None, :]
    wt = wy[:, :, None, :, None, :, None] * wx[:, None, :, None, :, None, :]
    r, ph, pw = pos.shape[:3]
    rows = pos.reshape(r, ph, pw, -1) + (bidx * h * w)[:, None, None, None]
    xf = F.reshape(F.permute(x, (0, 2, 3, 1)), (n * h * w, c))
    vals = F.mul(F.index_select(xf, 0, rows), wrap(wt.reshape(r, ph, pw, -1, 1).astype(x.dtype)))
    return F.permute(F.amax(vals, dim=3), (0, 3, 1, 2))


@register("RoiAlign", since=10)
def roi_align(ctx, node: NodeView, inputs):
    x, rois, bidx = inputs
    mode = node.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise node.fail(f"mode={mode!r} is not supported (avg or max)")
    ph, pw = node.attr("output_height", 1), node.attr("output_width", 1)
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4:
        raise node.fail(f"X {x.shape} must be (N, C, H, W) and rois {rois.shape} (R, 4)")
    bidx = np.asarray(bidx.data).reshape(-1).astype(np.int64)
    if bidx.size != rois.shape[0] or (bidx.size and not 0 <= bidx.min() <= bidx.max() < x.shape[0]):
        raise node.fail(f"batch_indices {bidx.tolist()} do not match rois {rois.shape} "
                        f"and a batch of {x.shape[0]}")  # fmt: skip
    if bidx.size == 0:
        return wrap(np.zeros((0, x.shape[1], ph, pw), x.dtype))
    start, size, grid = _roi_geometry(node, np.asarray(rois.data), ph, pw)
    h, w = x.shape[2:]
    ay = _roi_axis(start[:, 1], size[:, 1], ph, grid[:, 1], h)
    ax = _roi_axis(start[:, 0], size[:, 0], pw, grid[:, 0], w)
    taps, weights = (ay[0], ax[0]), (ay[1], ax[1])
    if mode == "max":
        return _roi_max(x, taps, weights, bidx)
    count = np.maximum(grid[:, 0] * grid[:, 1], 1).astype(x.dtype)
    # padded samples weigh nothing in an average; the 1 / count goes into the y factor
    wy = weights[0] * ay[2][..., None] / count[:, None, None, None]
    wx = weights[1] * ax[2][..., None]
    return _roi_avg(x, taps, (wy, wx), bidx)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)  # C's round(), not numpy's half-to-even


@register("MaxRoiPool", since=1)
def max_roi_pool(ctx, node: NodeView, inputs):
    """Caffe's RoI pooling, as onnxruntime computes it: each roi (batch, x1, y1, x2, y2) is
    scaled and rounded to whole pixels and cut into pooled_shape bins of floor/ceil edges; a
    bin's output is the max of its pixels, 0 for an empty bin. The bins' pixels are gathered
    with index_select (a -inf row pads the smaller bins), so the gradient reaches X."""
    x, rois = inputs
    ph, pw = (int(v) for v in node.attr("pooled_shape") or (0, 0))
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 5 or ph < 1 or pw < 1:
        raise node.fail(f"X {x.shape} must be (N, C, H, W), rois {rois.shape} (R, 5) and "
                        f"pooled_shape two positive sizes")  # fmt: skip
    n, c, h, w = x.shape
    r = np.asarray(rois.data, np.float64)
    b = r[:, 0].astype(np.int64)
    if r.size and not 0 <= b.min() <= b.max() < n:
        raise node.fail(f"roi batch indices {sorted(set(b.tolist()))} outside a batch of {n}")
    x1, y1, x2, y2 = (_round_half_away(r[:, k] * node.attr("spatial_scale", 1.0)).astype(np.int64)
                      for k in range(1, 5))  # fmt: skip
    rh, rw = np.maximum(y2 - y1 + 1, 1), np.maximum(x2 - x1 + 1, 1)
    edges = []
    for k in range(len(r)):
        ys = [
            (
                min(max(int(np.floor(i * rh[k] / ph)) + y1[k], 0), h),
                min(max(int(np.ceil((i + 1) * rh[k] / ph)) + y1[k], 0), h),
            )
            for i in range(ph)
        ]
        xs = [
            (
                min(max(int(np.floor(j * rw[k] / pw)) + x1[k], 0), w),
                min(max(int(np.ceil((j + 1) * rw[k] / pw)) + x1[k], 0), w),
            )
            for j in range(pw)
        ]
        edges += [(b[k], ya, yb, xa, xb) for ya, yb in ys for xa, xb in xs]  # fmt: skip
    cells = [[(bb * h + yy) * w + xx for yy in range(ya, yb) for xx in range(xa, xb)]
             for bb, ya, yb, xa, xb in edges]  # fmt: skip
    most = max((len(v) for v in cells), default=0)
    pad = n * h * w  # the -inf row
    idx = np.array([v + [pad] * (most - len(v)) for v in cells], np.int64).reshape(-1)
    if len(r) == 0 or most == 0:
        return wrap(np.zeros((len(r), c, ph, pw), x.dtype))
    xf = F.reshape(F.permute(x, (0, 2, 3, 1)), (n * h * w, c))
    xf = F.concat([xf, wrap(np.full((1, c), -np.inf, x.dtype))], axis=0)
    best = F.amax(F.reshape(F.index_select(xf, 0, idx), (len(cells), most, c)), dim=1)
    empty = np.array([len(v) == 0 for v in cells])[:, None]
    best = F.where(wrap(np.broadcast_to(empty, best.shape)), wrap(np.zeros((), x.dtype)), best)
    return F.permute(F.reshape(best, (len(r), ph, pw, c)), (0, 3, 1, 2))


# -- DeformConv --------------------------------------------------------------------------------


def _deform_attrs(node: NodeView, x, w):
    nd = x.ndim - 2
    ks = tuple(node.attr("kernel_shape") or w.shape[2:])
    if ks != tuple(w.shape[2:]):
        raise node.fail(f"kernel_shape {list(ks)} does not match W {w.shape}")
    strides = tuple(node.attr("strides") or (1,) * nd)
    dil = tuple(node.attr("dilations") or (1,) * nd)
    pads = tuple(node.attr("pads") or (0,) * (2 * nd))
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise node.fail(f"strides {strides}, dilations {dil}, pads {pads} do not fit {nd}-d input")
    out = tuple((x.shape[2 + a] + pads[a] + pads[nd + a] - (ks[a] - 1) * dil[a] - 1) // strides[a]
                + 1 for a in range(nd))  # fmt: skip
    return ks, strides, dil, pads, out


def _deform_taps(offset, base, sizes):
    """Bilinear taps of every sampling point: flat pixel indices (N, og, K, O, 2^d) and their
    weights as an engine tensor of that shape, differentiable in ``offset`` (N, og, K, d, O)."""
    nd = len(sizes)
    factors, idx = [], []
    for a in range(nd):
        off = F.getitem(offset, (slice(None), slice(None), slice(None), a))
        pos = off.data + base[a]
        lo = np.floor(pos)
        # t = pos - floor(pos) = offset - (floor(pos) - base): the constant part moves nothing
        t = F.sub(off, wrap((lo - base[a]).astype(off.dtype)))
        lo = lo.astype(np.int64)
        sides = []
        for k, f in ((lo, F.sub(1.0, t)), (lo + 1, t)):
            ok = (k >= 0) & (k < sizes[a])
            sides.append((np.clip(k, 0, sizes[a] - 1), F.mul(f, wrap(ok.astype(off.dtype)))))
        factors.append(sides)
        idx.append(sizes[a + 1 :])
    flat, weights = [], []
    for corner in itertools.product((0, 1), repeat=nd):
        pick = [factors[a][c] for a, c in enumerate(corner)]
        flat.append(sum(k * math.prod(idx[a]) for a, (k, _) in enumerate(pick)))
        wt = pick[0][1]
        for _, f in pick[1:]:
            wt = F.mul(wt, f)
        weights.append(wt)
    return np.stack(flat, axis=-1), F.stack(weights, axis=-1)


def _deform_base(ks, strides, dil, pads, out):
    """Per axis, where kernel tap k of output point o lands before its offset: (K, O)."""
    nd = len(ks)
    kk = np.indices(ks).reshape(nd, -1)
    oo = np.indices(out).reshape(nd, -1)
    return [(oo[a] * strides[a] - pads[a])[None, :] + (kk[a] * dil[a])[:, None] for a in range(nd)]


@register("DeformConv", since=19)
def deform_conv(ctx, node: NodeView, inputs):
    """y = W * (bilinear samples of X at the kernel taps moved by the offsets, times the mask)"""
    x, w, offset = inputs[:3]
    bias, mask = _opt(inputs, 3), _opt(inputs, 4)
    if x.ndim < 3 or w.ndim != x.ndim:
        raise node.fail(f"X {x.shape} and W {w.shape} must be (N, C, D1, ...) of one rank")
    ks, strides, dil, pads, out = _deform_attrs(node, x, w)
    group, og = node.attr("group", 1), node.attr("offset_group", 1)
    n, c, sizes, nd = x.shape[0], x.shape[1], x.shape[2:], x.ndim - 2
    cout, cin_g = w.shape[:2]
    if group < 1 or og < 1 or c != cin_g * group or cout % group or c % og:
        raise node.fail(f"group={group}, offset_group={og} do not fit X {x.shape}, W {w.shape}")
    k, o, p = math.prod(ks), math.prod(out), math.prod(sizes)
    if offset.shape != (n, og * k * nd, *out):
        raise node.fail(f"offset {offset.shape} must be {(n, og * k * nd, *out)}")
    if mask is not None and mask.shape != (n, og * k, *out):
        raise node.fail(f"mask {mask.shape} must be {(n, og * k, *out)}")
    base = _deform_base(ks, strides, dil, pads, out)
    offset = F.reshape(offset, (n, og, k, nd, o))
    flat, weights = _deform_taps(offset, base, sizes)
    if mask is not None:
        weights = F.mul(weights, F.reshape(mask, (n, og, k, o, 1)))
    # rows of (image, offset group, pixel) holding that group's channels
    cg = c // og
    xr = F.reshape(F.permute(F.reshape(x, (n, og, cg, p)), (0, 1, 3, 2)), (n * og * p, cg))
    rows = flat + (np.arange(n * og) * p).reshape(n, og, 1, 1, 1)
    vals = F.sum(F.mul(F.index_select(xr, 0, rows), F.unsqueeze(weights, -1)), axis=4)
    cols = F.reshape(F.permute(vals, (0, 1, 4, 2, 3)), (n, group, cin_g * k, o))
    y = F.matmul(F.reshape(w, (group, cout // group, cin_g * k)), cols)
    y = F.reshape(y, (n, cout, *out))
    if bias is not None:
        y = F.add(y, F.reshape(bias, (1, cout) + (1,) * nd))
    return y
