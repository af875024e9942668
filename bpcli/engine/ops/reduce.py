"""Reductions over any set of dims, with ``keepdim``.

Keywords are PyTorch's (``dim=``, ``keepdim=``); numpy's ``axis=``/``keepdims=`` are aliases.
``max``/``min`` follow torch (a ``(values, indices)`` named tuple with a dim); ``amax``/``amin``
give values only.
"""

from __future__ import annotations

import builtins
from typing import NamedTuple

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.elementwise import abs as abs_
from bpcli.engine.ops.elementwise import astype, maximum, minimum, ne
from bpcli.engine.ops.index import gather
from bpcli.engine.ops.shape import squeeze
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "MinMax",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "logsumexp",
    "max",
    "mean",
    "min",
    "norm",
    "sum",
    "var",
]  # fmt: skip


def normalize_axes(axis, ndim: int, opname: str) -> tuple[int, ...]:
    """``axis`` (None, int or sequence, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        # NOTE: `ndim or 1`, not max(ndim, 1): this module defines its own max().
        if not -(ndim or 1) <= a < (ndim or 1):
            raise BpcliError(f"axis {a} is out of range for a tensor with {ndim} dims", opname)
        out.append(int(a) % (ndim or 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise BpcliError(f"repeated axis in {axis}", opname)
    return tuple(sorted(out)) if ndim else ()


def axis_args(axis, keepdims, dim, keepdim):
    """Merge numpy-style and PyTorch-style keyword names."""
    if dim is not None:
        if axis is not None:
            raise BpcliError("give axis= or dim=, not both", "reduce")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, bool(keepdims)


def expand_back(g: np.ndarray, in_shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdims and axes:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(shape)
    return g


class Sum(Op):
    """y = sum(x, axes); dx = broadcast(g)"""

    name, onnx, saves_inputs = "sum", "ReduceSum", False

    def forward(self, x, axes, keepdims):
        self.shape = x.shape
        return np.sum(x, axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.shape, a["axes"], a["keepdims"])
        return np.broadcast_to(g, self.shape)


class Mean(Op):
    """y = mean(x, axes); dx = broadcast(g) / n"""

    name, onnx, saves_inputs = "mean", "ReduceMean", False

    def forward(self, x, axes, keepdims):
        self.shape = x.shape
        self.n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return np.mean(x, axis=axes, keepdims=keepdims)

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.shape, a["axes"], a["keepdims"]) / g.dtype.type(self.n or 1)
        return np.broadcast_to(g, self.shape)


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    return Sum.apply(x, axes=normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    return Mean.apply(x, axes=normalize_axes(axis, x.ndim, "mean"), keepdims=keepdims)


def _reduced_shape(shape, axes, keepdims) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _count(shape, axes) -> int:
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def _not_empty(x: np.ndarray, axes, opname: str) -> None:
    if any(x.shape[a] == 0 for a in axes):
        raise BpcliError(f"cannot reduce an empty axis of shape {x.shape} (axes {axes})", opname)


class Var(Op):
    """y = sum((x - mean)^2) / (n - c); dx = g 2 (x - mean) / (n - c)"""

    name, onnx, saves_inputs = "var", None, False  # exported as a composition

    def forward(self, x, axes, keepdims, correction):
        t = x.dtype.type
        # NOTE: n - c is clamped at 0 (as torch): inf, or nan for 0/0, never a negative variance.
        self.denom = t(builtins.max(_count(x.shape, axes) - correction, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            self.d = x - np.mean(x, axis=axes, keepdims=True)
            return np.sum(self.d * self.d, axis=axes, keepdims=keepdims) / self.denom

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.d.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.d * (g * (2 / self.denom))


class _Extreme(Op):
    saves_inputs = False
    fn = None

    def forward(self, x, axes, keepdims):
        _not_empty(x, axes, self.name)
        self.x = x
        self.y = type(self).fn(x, axis=axes, keepdims=True)
        return self.y if keepdims else self.y.reshape(_reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.x.shape, a["axes"], a["keepdims"])
        hit = self.x == self.y
        ties = np.sum(hit, axis=a["axes"], keepdims=True, dtype=g.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # ties == 0 only where y is nan
            return hit * (g / ties)  # a mask product: np.where is ~20x slower


class Max(_Extreme):
    """y = max(x, axes); dx = g at the maxima, split evenly among ties (as torch.amax)"""

    name, onnx, fn = "max", "ReduceMax", np.amax


class Min(_Extreme):
    """y = min(x, axes); dx = g at the minima, split evenly among ties (as torch.amin)"""

    name, onnx, fn = "min", "ReduceMin", np.amin


class LogSumExp(Op):
    """y = m + log(sum(exp(x - m))), m = max(x); dx = g exp(x - y)"""

    name, onnx, saves_inputs = "logsumexp", "ReduceLogSumExp", False

    def forward(self, x, axes, keepdims):
        m = np.amax(x, axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isinf(m), x.dtype.type(0), m)  # all -inf (or empty): -inf, not nan
        self.e = np.exp(x - m)
        self.s = np.sum(self.e, axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            y = np.log(self.s) + m
        return y if keepdims else y.reshape(_reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.e.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore"):  # s == 0: empty or all -inf
            return self.e * (g / self.s)


class L2Norm(Op):
    """y = sqrt(sum(x^2)); dx = g x / y, 0 where y == 0 (as torch)"""

    name, onnx = "l2norm", "ReduceL2"

    def forward(self, x, axes, keepdims):
        self.x = x
        self.y = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        return self.y if keepdims else self.y.reshape(_reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        g = expand_back(g, self.x.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.y == 0, g.dtype.type(0), g / self.y)
        return self.x * scale


class PNorm(Op):
    """y = sum(|x|^p)^(1/p); dx = g sign(x) |x|^(p-1) / y^(p-1), 0 where x or y is 0"""

    name, onnx = "pnorm", None  # exported as Pow(ReduceSum(Pow(Abs(x), p)), 1/p)

    def forward(self, x, p, axes, keepdims):
        t = x.dtype.type
        self.x = x
        with np.errstate(divide="ignore", over="ignore"):
            s = np.sum(np.abs(x) ** t(p), axis=axes, keepdims=True)
            self.y = s ** t(1 / p)
        return self.y if keepdims else self.y.reshape(_reduced_shape(x.shape, axes, False))

    def backward(self, g):
        a = self.attrs
        x, y, t = self.x, self.y, g.dtype.type
        g = expand_back(g, x.shape, a["axes"], a["keepdims"])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grow = np.sign(x) * np.abs(x) ** t(a["p"] - 1)
            scale = np.where(y == 0, t(0), g / y ** t(a["p"] - 1))
        if a["p"] < 1:  # |0|^(p-1) is inf there: sign 0 times inf would be nan
            grow = np.where(x == 0, t(0), grow)
        return grow * scale


class _Arg(Op):
    differentiable, saves_inputs = False, False
    fn = None

    def forward(self, x, axis, keepdims):
        if x.size == 0:
            raise BpcliError(f"{self.name} of an empty tensor of shape {x.shape}", self.name)
        if x.ndim == 0:
            return np.zeros((), np.int64)
        out = type(self).fn(x, axis=axis, keepdims=keepdims)
        return np.asarray(out, dtype=np.int64)


class ArgMax(_Arg):
    """y = index of the first maximum along axis (flat index when axis is None); no gradient"""

    name, onnx, fn = "argmax", "ArgMax", np.argmax


class ArgMin(_Arg):
    """y = index of the first minimum along axis (flat index when axis is None); no gradient"""

    name, onnx, fn = "argmin", "ArgMin", np.argmin


# -- functional API of the reductions above ----------------------------------------------------


def _need_float(x: Tensor, opname: str) -> None:
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a float tensor, got {x.dtype} (cast with .astype())", opname)


def _setup(x, axis, keepdims, dim, keepdim, opname):
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    return x, normalize_axes(axis, x.ndim, opname), keepdims


def var(x, axis=None, correction=None, keepdims=False, *, ddof=None, unbiased=None, dim=None,
        keepdim=None) -> Tensor:  # fmt: skip
    """Variance over ``axis`` with Bessel's ``correction`` (default 1, as torch; numpy's
    ``ddof=`` and torch's ``unbiased=`` are accepted too)."""
    given = [(k, v) for k, v in (("correction", correction), ("ddof", ddof),
                                 ("unbiased", unbiased)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise BpcliError(f"give one of correction=, ddof=, unbiased=, not {given}", "var")
    c = 1 if not given else (int(given[0][1]) if given[0][0] == "unbiased" else given[0][1])
    if isinstance(c, bool) or not isinstance(c, int | float | np.integer | np.floating):
        raise BpcliError(f"correction must be a number, got {c!r}", "var")
    x, axes, keepdims = _setup(x, axis, keepdims, dim, keepdim, "var")
    _need_float(x, "var")
    return Var.apply(x, axes=axes, keepdims=keepdims, correction=c.item() if
                     isinstance(c, np.generic) else c)  # fmt: skip


class MinMax(NamedTuple):
    """What ``max(x, dim)``/``min(x, dim)`` return, as torch's ``return_types.max``."""

    values: Tensor
    indices: Tensor


def amax(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Largest values over ``dim`` (an int, a tuple, or all), the gradient split evenly among
    ties (torch.amax, np.max)."""
    x, axes, keepdims = _setup(x, axis, keepdims, dim, keepdim, "amax")
    return Max.apply(x, axes=axes, keepdims=keepdims)


def amin(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Smallest values over ``dim`` (an int, a tuple, or all), as torch.amin."""
    x, axes, keepdims = _setup(x, axis, keepdims, dim, keepdim, "amin")
    return Min.apply(x, axes=axes, keepdims=keepdims)


def _extreme(name, reduce_all, arg, elementwise, x, dim, keepdim, axis, keepdims):
    if isinstance(dim, Tensor | np.ndarray):  # max(a, b): the elementwise maximum, as torch
        return elementwise(x, dim)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    if axis is None:
        if keepdims:
            raise BpcliError(f"{name}(x) over all elements takes no keepdim (give a dim)", name)
        return reduce_all(x)
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise BpcliError(f"dim must be one int, got {axis!r} (amax/amin take tuples)", name)
    x = lift(x)
    _not_empty(x.data, normalize_axes(axis, x.ndim, name), name)
    idx = arg(x, axis, keepdims=True)
    if x.ndim == 0:
        return MinMax(x, idx)
    # NOTE: a gather, so the gradient goes to the chosen element only (torch's max(dim)).
    values = gather(x, axis, idx)
    if not keepdims:
        values, idx = squeeze(values, axis), squeeze(idx, axis)
    return MinMax(values, idx)


def max(x, dim=None, keepdim=None, *, axis=None, keepdims=False):  # noqa: A001
    """torch.max: the largest value of all elements; with ``dim`` a named tuple
    ``(values, indices)`` along that dim; ``max(a, b)`` of two tensors is ``maximum``."""
    return _extreme("max", amax, argmax, maximum, x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=None, *, axis=None, keepdims=False):  # noqa: A001
    """torch.min: the smallest value of all elements; with ``dim`` a named tuple
    ``(values, indices)`` along that dim; ``min(a, b)`` of two tensors is ``minimum``."""
    return _extreme("min", amin, argmin, minimum, x, dim, keepdim, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(x))) over ``axis`` without overflow (all axes when None)."""
    x, axes, keepdims = _setup(x, axis, keepdims, dim, keepdim, "logsumexp")
    _need_float(x, "logsumexp")
    return LogSumExp.apply(x, axes=axes, keepdims=keepdims)


def norm(x, ord=2, axis=None, keepdims=False, *, p=None, dim=None, keepdim=None) -> Tensor:
    """Vector ``ord``-norm over ``axis`` (all elements when None: the Frobenius norm for 2).

    ``ord`` is any non-zero number, ``inf``/``-inf`` or ``'fro'`` (= 2); ``p=`` is torch's
    name for it. At x = 0 the gradient is 0, as in torch. Matrix norms (``'nuc'``, spectral)
    are not supported.
    """
    order = ord if p is None else p
    if order == "fro":
        order = 2
    if isinstance(order, str | bool) or not isinstance(order, int | float | np.number):
        raise BpcliError(f"ord must be a number, inf or 'fro', got {order!r}", "norm")
    order = float(order)
    x, axes, keepdims = _setup(x, axis, keepdims, dim, keepdim, "norm")
    _need_float(x, "norm")
    if order == 2:
        return L2Norm.apply(x, axes=axes, keepdims=keepdims)
    if order == 1:
        return Sum.apply(abs_(x), axes=axes, keepdims=keepdims)
    if order == np.inf:
        return Max.apply(abs_(x), axes=axes, keepdims=keepdims)
    if order == -np.inf:
        return Min.apply(abs_(x), axes=axes, keepdims=keepdims)
    if order == 0:  # the number of non-zeros: piecewise constant, no gradient
        return Sum.apply(astype(ne(x, 0), x.dtype), axes=axes, keepdims=keepdims)
    return PNorm.apply(x, p=order, axes=axes, keepdims=keepdims)


def _arg(op, x, axis, keepdims, dim, keepdim):
    x = lift(x)
    axis, keepdims = axis_args(axis, keepdims, dim, keepdim)
    if axis is not None:
        if not isinstance(axis, int | np.integer):
            raise BpcliError(f"axis must be one int or None, got {axis!r}", op.name)
        axis = normalize_axes(axis, x.ndim, op.name)
        axis = axis[0] if axis else None
    return op.apply(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Index (int64) of the first largest value along ``axis``; of the flattened tensor when
    ``axis`` is None."""
    return _arg(ArgMax, x, axis, keepdims, dim, keepdim)


def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Index (int64) of the first smallest value along ``axis``; of the flattened tensor when
    ``axis`` is None."""
    return _arg(ArgMin, x, axis, keepdims, dim, keepdim)
