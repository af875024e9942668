"""interpolate (and its upsample aliases), pixel_shuffle and pixel_unshuffle, as torch's.

Resampling is separable: each resized axis is a linear map built in numpy from the shapes
alone, an (out, in) weight matrix applied with matmul (an index vector and index_select for
nearest), so gradients come from those ops and are exact. The ONNX Resize importer builds its
matrices with the same ``resample_matrix`` and applies them with ``matmul_along``.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.ops.index import index_select
from bpcli.engine.ops.linalg import matmul
from bpcli.engine.ops.pool import _bins
from bpcli.engine.ops.shape import permute, reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "interpolate",
    "pixel_shuffle",
    "pixel_unshuffle",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
]


# -- the shared core: weight matrices applied along one axis ----------------------------------


def _kernel(mode: str, a: float):
    if mode == "linear":
        return (lambda d: np.maximum(0.0, 1.0 - np.abs(d))), 1

    def keys(d):  # Keys' cubic convolution kernel
        d = np.abs(d)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

    return keys, 2


def resample_matrix(
    src: np.ndarray, n_in: int, mode: str, a: float = -0.75, scale: float = 1.0,
    antialias: bool = False, exclude: bool = False,
) -> np.ndarray:  # fmt: skip
    """The (out, in) float64 matrix of a linear or cubic resample sampling the input at ``src``
    (input pixel units); taps past the edges repeat the edge pixel."""
    kern, support = _kernel(mode, a)
    # antialias stretches the kernel by 1 / scale when shrinking, so more inputs contribute
    s = min(scale, 1.0) if antialias else 1.0
    reach = int(np.ceil(support / s))
    j = np.floor(src)[:, None] + np.arange(-reach, reach + 1)
    w = kern((j - src[:, None]) * s)
    if antialias:
        w = w / w.sum(axis=1, keepdims=True)
    if exclude:
        w = np.where((j < 0) | (j >= n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    m = np.zeros((len(src), n_in))
    rows = np.repeat(np.arange(len(src)), j.shape[1])
    np.add.at(m, (rows, np.clip(j, 0, n_in - 1).astype(np.int64).ravel()), w.ravel())
    return m


def matmul_along(y: Tensor, axis: int, m: np.ndarray) -> Tensor:
    """``m @ y`` along one axis of y (m a constant (out, in) matrix)."""
    shape = y.shape
    n_out, n_in = m.shape
    new = (*shape[:axis], n_out, *shape[axis + 1 :])
    if axis == y.ndim - 1:
        return matmul(y, const(np.ascontiguousarray(m.T).astype(y.dtype)))
    pre, post = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    out = matmul(const(m.astype(y.dtype)), reshape(y, (pre, n_in, post)))
    return reshape(out, new)


# -- interpolate ------------------------------------------------------------------------------

_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "area", *_RANK)


def _out_sizes(x, nd, size, scale_factor, recompute):
    """Output sizes and the scale factors handed to the kernels (None: use in / out)."""
    op = "interpolate"
    if (size is None) == (scale_factor is None):
        raise BpcliError("exactly one of size and scale_factor must be given", op)
    if size is not None:
        if recompute:
            raise BpcliError("recompute_scale_factor is not meaningful with an explicit size", op)
        sizes = (size,) * nd if isinstance(size, int | np.integer) else tuple(size)
        if len(sizes) != nd or not all(isinstance(s, int | np.integer) and s > 0 for s in sizes):
            raise BpcliError(
                f"size must be a positive int or {nd} of them for a {x.ndim}-D input, got {size!r}",
                op,
            )
        return tuple(int(s) for s in sizes), (None,) * nd
    sf = (scale_factor,) * nd if isinstance(scale_factor, int | float) else tuple(scale_factor)
    if len(sf) != nd or not all(isinstance(s, int | float) and s > 0 for s in sf):
        raise BpcliError(
            f"scale_factor must be a positive number or {nd} of them for a {x.ndim}-D input, "
            f"got {scale_factor!r}",
            op,
        )
    sizes = tuple(math.floor(float(n) * float(s)) for n, s in zip(x.shape[2:], sf, strict=True))
    if min(sizes) < 1:
        raise BpcliError(f"scale_factor {scale_factor} gives an empty output {sizes}", op)
    return sizes, ((None,) * nd if recompute else tuple(float(s) for s in sf))


def _nearest_index(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    # NOTE: float32 arithmetic as torch's nearest_idx, so ties round the same way
    if scale is None:
        s = np.float32(n_in) / np.float32(n_out)
    else:
        s = np.float32(1.0 / scale)
    dst = np.arange(n_out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return np.minimum(np.floor(dst * s).astype(np.int64), n_in - 1)


def _source(n_in: int, n_out: int, scale, align: bool, cubic: bool, dtype) -> np.ndarray:
    """torch's area_pixel_compute_source_index, in the input's float type as torch's opmath."""
    ft = np.float64 if dtype == np.float64 else np.float32
    dst = np.arange(n_out, dtype=ft)
    if align:
        s = ft((n_in - 1) / (n_out - 1)) if n_out > 1 else ft(0)
        return (dst * s).astype(np.float64)
    s = ft(n_in) / ft(n_out) if scale is None else ft(1.0 / scale)
    src = s * (dst + ft(0.5)) - ft(0.5)
    return (src if cubic else np.maximum(src, ft(0))).astype(np.float64)


def interpolate(
    input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
    recompute_scale_factor=None, antialias: bool = False,
) -> Tensor:  # fmt: skip
    """Resize the spatial dims of input (N, C, ...) as torch.nn.functional.interpolate."""
    x, op = lift(input), "interpolate"
    if mode not in _MODES:
        raise BpcliError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}", op)
    if x.ndim not in (3, 4, 5):
        raise BpcliError(f"input of shape {x.shape} must have 3, 4 or 5 dims (N, C, ...)", op)
    nd = x.ndim - 2
    if mode in _RANK and _RANK[mode] != nd:
        raise BpcliError(f"mode {mode!r} needs a {_RANK[mode] + 2}-D input, got {x.shape}", op)
    if align_corners is not None and mode not in _RANK:
        raise BpcliError(
            "align_corners can only be set with the interpolating modes "
            "(linear, bilinear, bicubic, trilinear)",
            op,
        )
    if antialias:
        raise BpcliError("antialias=True is not supported (resample without it)", op)
    if mode != "nearest" and x.dtype.kind != "f":
        raise BpcliError(f"mode {mode!r} needs a float input, got {x.dtype}", op)
    sizes, scales = _out_sizes(x, nd, size, scale_factor, recompute_scale_factor)
    if 0 in x.shape[2:]:
        raise BpcliError(f"input of shape {x.shape} has an empty spatial dim", op)
    y = x
    for d, (n_out, s) in enumerate(zip(sizes, scales, strict=True)):
        axis, n_in = d + 2, x.shape[d + 2]
        if mode in ("nearest", "nearest-exact"):
            idx = _nearest_index(n_in, n_out, s, mode == "nearest-exact")
            if n_out != n_in or not np.array_equal(idx, np.arange(n_in)):
                y = index_select(y, axis, idx)
            continue
        if mode == "area":
            m = _bins(n_in, n_out, np.float64)
        else:
            cubic = mode == "bicubic"
            src = _source(n_in, n_out, s, bool(align_corners), cubic, x.dtype)
            m = resample_matrix(src, n_in, "cubic" if cubic else "linear")
        if m.shape[0] != m.shape[1] or not np.array_equal(m, np.eye(n_in)):
            y = matmul_along(y, axis, m)
    return y


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """The deprecated alias of interpolate that torch keeps."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None) -> Tensor:
    """interpolate(..., mode='nearest'), torch's deprecated alias."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None) -> Tensor:
    """interpolate(..., mode='bilinear', align_corners=True), torch's deprecated alias."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# -- pixel shuffle ----------------------------------------------------------------------------


def _factor(r, opname) -> int:
    if not isinstance(r, int | np.integer) or isinstance(r, bool) or r < 1:
        raise BpcliError(f"the factor must be a positive int, got {r!r}", opname)
    return int(r)


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r), as torch's."""
    x, op = lift(input), "pixel_shuffle"
    r = _factor(upscale_factor, op)
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise BpcliError(
            f"input of shape {x.shape} needs >= 3 dims and channels divisible by {r * r}", op
        )
    *lead, c, h, w = x.shape
    k = len(lead)
    y = reshape(x, (*lead, c // (r * r), r, r, h, w))
    y = permute(y, (*range(k), k, k + 3, k + 1, k + 4, k + 2))
    return reshape(y, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), as torch's."""
    x, op = lift(input), "pixel_unshuffle"
    r = _factor(downscale_factor, op)
    if x.ndim < 3 or x.shape[-1] % r or x.shape[-2] % r:
        raise BpcliError(f"input of shape {x.shape} needs >= 3 dims and H, W divisible by {r}", op)
    *lead, c, h, w = x.shape
    k = len(lead)
    y = reshape(x, (*lead, c, h // r, r, w // r, r))
    y = permute(y, (*range(k), k, k + 2, k + 4, k + 1, k + 3))
    return reshape(y, (*lead, c * r * r, h // r, w // r))
