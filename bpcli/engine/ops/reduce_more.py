"""More reductions, as torch has them: std (and std_mean/var_mean), prod, any/all,
count_nonzero, nansum/nanmean, and ``sum(dtype=)``.

Axes and keyword names as in ``reduce.py`` (``dim=``/``keepdim=``, ``axis=``/``keepdims=``).
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops import reduce as _reduce
from bpcli.engine.ops.elementwise import astype
from bpcli.engine.ops.reduce import _count, _setup, expand_back, mean, var
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "all",
    "any",
    "count_nonzero",
    "nanmean",
    "nansum",
    "prod",
    "std",
    "std_mean",
    "sum",
    "var_mean",
]  # fmt: skip


class Std(Op):
    """y = sqrt(sum((x - mean)^2) / (n - c)); dx = g (x - mean) / ((n - c) y), 0 where y == 0
    (as torch)"""

    name, onnx, saves_inputs = "std", None, False  # exported as a composition

    def forward(self, x, axes, keepdims, correction):
        self.denom = x.dtype.type(_count(x.shape, axes) - correction)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.d = x - np.mean(x, axis=axes, keepdims=True)
            self.y = np.sqrt(np.sum(self.d * self.d, axis=axes, keepdims=True) / self.denom)
        return self.y if keepdims else self.y.reshape(_reduce._reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.d.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.y == 0, g.dtype.type(0), g / (self.denom * self.y))
        return self.d * scale


class Prod(Op):
    """y = prod(x, axes); dx_i = g prod_{j != i} x_j (exact with zeros: no division by x)"""

    name, onnx = "prod", "ReduceProd"

    def forward(self, x, axes, keepdims):
        self.x = x
        return np.prod(x, axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        x, axes = self.x, a["axes"]
        g = expand_back(g, x.shape, axes, a["keepdims"])
        rest = [d for d in range(x.ndim) if d not in axes]
        # the reduced axes last and flattened: product of the others = left scan * right scan
        moved = np.transpose(x, rest + list(axes))
        n = _count(x.shape, axes)
        if x.size == 0:
            return np.zeros(x.shape, g.dtype)
        flat = moved.reshape(*moved.shape[: len(rest)], n)
        ones = np.ones((*flat.shape[:-1], 1), x.dtype)
        left = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
        right = np.flip(np.cumprod(np.flip(np.concatenate([flat[..., 1:], ones], -1), -1), -1), -1)
        others = (left * right).reshape(moved.shape)
        return g * np.transpose(others, np.argsort(rest + list(axes)))


class _Logical(Op):
    differentiable, saves_inputs = False, False
    fn = None

    def forward(self, x, axes, keepdims):
        y = type(self).fn(x, axis=axes, keepdims=keepdims)
        return np.asarray(y, np.uint8 if x.dtype == np.uint8 else np.bool_)  # torch keeps uint8


class Any(_Logical):
    """y = any(x != 0, axes) (bool; uint8 for uint8 input, as torch); no gradient"""

    name, onnx, fn = "any", None, np.any


class All(_Logical):
    """y = all(x != 0, axes) (bool; uint8 for uint8 input, as torch); no gradient"""

    name, onnx, fn = "all", None, np.all


class CountNonzero(Op):
    """y = number of x != 0 over axes (int64); no gradient"""

    name, onnx, differentiable, saves_inputs = "count_nonzero", None, False, False

    def forward(self, x, axes):
        return np.asarray(np.count_nonzero(x, axis=axes), np.int64)


class NanSum(Op):
    """y = sum of the non-nan x over axes; dx = g where x is not nan, 0 at nan"""

    name, onnx, saves_inputs = "nansum", None, False

    def forward(self, x, axes, keepdims):
        self.ok = ~np.isnan(x)
        return np.sum(np.where(self.ok, x, x.dtype.type(0)), axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        return expand_back(g, self.ok.shape, a["axes"], a["keepdims"]) * self.ok


class NanMean(Op):
    """y = sum of the non-nan x / their count over axes (nan if none); dx = g / count where x
    is not nan, 0 at nan"""

    name, onnx, saves_inputs = "nanmean", None, False

    def forward(self, x, axes, keepdims):
        self.ok = ~np.isnan(x)
        self.n = np.sum(self.ok, axis=axes, keepdims=True, dtype=x.dtype)
        s = np.sum(np.where(self.ok, x, x.dtype.type(0)), axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = s / self.n
        return y if keepdims else y.reshape(_reduce._reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.ok.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / self.n) * self.ok  # an all-nan slice gives nan, as torch's 0 * inf


# -- functional API ----------------------------------------------------------------------------


def _correction(correction, unbiased, opname: str):
    """torch's ``correction=`` or the older ``unbiased=`` (also as a bool in second place)."""
    if isinstance(correction, bool):
        correction, unbiased = None, correction
    if correction is not None and unbiased is not None:
        raise BpcliError("give correction= or unbiased=, not both", opname)
    if unbiased is not None:
        return int(bool(unbiased))
    c = 1 if correction is None else correction
    if isinstance(c, bool) or not isinstance(c, int | float | np.integer | np.floating):
        raise BpcliError(f"correction must be a number, got {c!r}", opname)
    return c.item() if isinstance(c, np.generic) else c


def std(x, dim=None, correction=None, keepdim=False, *, unbiased=None, axis=None,
        keepdims=None) -> Tensor:  # fmt: skip
    """Standard deviation over ``dim`` with Bessel's ``correction`` (default 1), as torch.std;
    the gradient is 0 where the result is 0, as in torch."""
    c = _correction(correction, unbiased, "std")
    x, axes, keepdim = _setup(x, axis if dim is None else dim, keepdim if keepdims is None
                              else keepdims, None, None, "std")  # fmt: skip
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float tensor, got {x.dtype} (cast with .astype())", "std")
    return Std.apply(x, axes=axes, keepdims=keepdim, correction=c)


def var_mean(x, dim=None, correction=None, keepdim=False, *, unbiased=None, axis=None,
             keepdims=None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(var(x), mean(x))`` over ``dim`` (torch.var_mean; a plain tuple, as torch's)."""
    c = _correction(correction, unbiased, "var_mean")
    dim = axis if dim is None else dim
    keepdim = keepdim if keepdims is None else keepdims
    return var(x, dim=dim, correction=c, keepdim=keepdim), mean(x, dim=dim, keepdim=keepdim)


def std_mean(x, dim=None, correction=None, keepdim=False, *, unbiased=None, axis=None,
             keepdims=None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(std(x), mean(x))`` over ``dim`` (torch.std_mean; a plain tuple, as torch's)."""
    c = _correction(correction, unbiased, "std_mean")
    dim = axis if dim is None else dim
    keepdim = keepdim if keepdims is None else keepdims
    return std(x, dim, c, keepdim), mean(x, dim=dim, keepdim=keepdim)


def _int64_default(x: Tensor, dtype) -> Tensor:
    """torch's accumulation dtype: ``dtype`` if given, else int64 for bool/int input."""
    if dtype is not None:
        return astype(x, dtype)
    return astype(x, np.int64) if x.dtype.kind in "biu" else x


def sum(x, *args, dtype=None, **kw) -> Tensor:  # noqa: A001
    """torch.sum: ``reduce.sum`` with ``dtype=`` (the input is cast first, as torch does);
    bool and integer inputs sum in int64."""
    return _reduce.sum(_int64_default(lift(x), dtype), *args, **kw)


def prod(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """Product over ``dim`` (one int, or all elements when None), as torch.prod; the gradient
    is exact where the input has zeros."""
    dim = axis if dim is None else dim
    if dim is not None and not isinstance(dim, int | np.integer):
        raise BpcliError(f"dim must be one int or None, got {dim!r}", "prod")
    x = _int64_default(lift(x), dtype)
    x, axes, keepdim = _setup(x, dim, keepdim if keepdims is None else keepdims, None, None,
                              "prod")  # fmt: skip
    return Prod.apply(x, axes=axes, keepdims=keepdim)


def _logical(op, x, dim, keepdim, axis, keepdims):
    x, axes, keepdim = _setup(x, dim, keepdim, axis, keepdims, op.name)
    return op.apply(x, axes=axes, keepdims=keepdim)


def any(x, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """True where some element over ``dim`` (an int, a tuple, or all when None) is non-zero."""
    return _logical(Any, x, dim, keepdim, axis, keepdims)


def all(x, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """True where every element over ``dim`` (an int, a tuple, or all when None) is non-zero."""
    return _logical(All, x, dim, keepdim, axis, keepdims)


def count_nonzero(x, dim=None, *, axis=None) -> Tensor:
    """The number (int64) of non-zero elements over ``dim`` (int, tuple or all), as torch."""
    x, axes, _ = _setup(x, axis if dim is None else dim, False, None, None, "count_nonzero")
    return CountNonzero.apply(x, axes=axes)


def _nan(op, x, dim, keepdim, dtype, axis, keepdims):
    x = lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    if x.dtype.kind != "f":  # no nan to skip: torch gives the plain reduction
        plain = sum if op is NanSum else mean
        return plain(x, dim=axis if dim is None else dim,
                     keepdim=keepdim if keepdims is None else keepdims)  # fmt: skip
    x, axes, keepdim = _setup(x, dim, keepdim, axis, keepdims, op.name)
    return op.apply(x, axes=axes, keepdims=keepdim)


def nansum(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """Sum over ``dim`` treating nan as 0 (torch.nansum)."""
    return _nan(NanSum, x, dim, keepdim, dtype, axis, keepdims)


def nanmean(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """Mean of the non-nan elements over ``dim`` (torch.nanmean); nan where all are nan."""
    return _nan(NanMean, x, dim, keepdim, dtype, axis, keepdims)
