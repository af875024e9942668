"""torch.linalg's norms: ``vector_norm``, ``matrix_norm``, ``norm``, and ``svdvals``.

Only ``svdvals`` is a primitive (its VJP is U diag(g) V^T); the spectral and nuclear norms are
its max, min and sum, the 1/inf norms are reductions of |A|, 'fro' is the vector 2-norm over
two dims, and the vector norms are the ones of ``reduce.py``.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.elementwise import abs as abs_
from bpcli.engine.ops.elementwise import astype
from bpcli.engine.ops.reduce import amax, amin, normalize_axes
from bpcli.engine.ops.reduce import norm as _vnorm
from bpcli.engine.ops.reduce import sum as sum_
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["matrix_norm", "svdvals", "vector_norm"]

MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


class SvdVals(Op):
    """s = singular values of A over dims (d0, d1), descending; dA = U diag(g) V^T"""

    name, onnx, saves_inputs = "svdvals", None, False  # ONNX has no SVD

    def forward(self, a, dims):
        m = np.moveaxis(a, dims, (-2, -1))
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        self.u, self.vh = u, vh
        return s

    def backward(self, g):
        da = (self.u * g[..., None, :]) @ self.vh
        return np.moveaxis(da, (-2, -1), self.attrs["dims"])


def _float(x: Tensor, dtype, opname: str) -> Tensor:
    # as torch: dtype= casts a float input (an integer one is an error even with dtype=)
    if x.dtype.kind != "f":
        raise BpcliError(f"needs a floating point tensor, got {x.dtype} (cast it first)", opname)
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise BpcliError(f"dtype must be a floating point type, got {dtype}", opname)
    return x if dtype is None else astype(x, dtype)


def _matrix_dims(dim, ndim: int, opname: str) -> tuple[int, int]:
    if ndim < 2:
        raise BpcliError(f"needs a tensor with at least 2 dims, got {ndim}", opname)
    if isinstance(dim, int | np.integer) or len(dim) != 2:
        raise BpcliError(f"dim must be a pair of dims, got {dim!r}", opname)
    d0, d1 = (normalize_axes(d, ndim, opname)[0] for d in dim)
    if d0 == d1:
        raise BpcliError(f"dims must be different, got {tuple(dim)}", opname)
    return d0, d1


def svdvals(A, *, dim=(-2, -1)) -> Tensor:  # noqa: N803 - torch's name
    """Singular values of the matrices over the last two dims, in descending order."""
    a = _float(lift(A), None, "svdvals")
    return SvdVals.apply(a, dims=_matrix_dims(dim, a.ndim, "svdvals"))


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.vector_norm: ``sum(|x|^ord)^(1/ord)`` over ``dim`` (all dims when None).

    ``ord`` is any number, ``inf`` (max |x|), ``-inf`` (min |x|) or 0 (count of non-zeros).
    """
    if isinstance(ord, str | bool) or not isinstance(ord, int | float | np.number):
        raise BpcliError(f"ord must be a number or +-inf, got {ord!r}", "vector_norm")
    x = _float(lift(x), dtype, "vector_norm")
    if x.ndim == 0 and dim is None:  # torch: a 0-d tensor is one element
        return _vnorm(reshape(x, (1,)), ord, axis=0)
    return _vnorm(x, ord, axis=dim, keepdims=keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None) -> Tensor:  # noqa: N803
    """torch.linalg.matrix_norm over the two dims ``dim`` of ``A``.

    ``ord``: 'fro' (Frobenius), 'nuc' (sum of singular values), 2 / -2 (largest / smallest
    singular value), 1 / -1 (max / min column sum of |A|), inf / -inf (max / min row sum).
    """
    if not any(ord == o and type(ord) is not bool for o in MATRIX_ORDS):
        raise BpcliError(f"ord must be one of 'fro', 'nuc', 1, -1, 2, -2, inf, -inf, got "
                         f"{ord!r}", "matrix_norm")  # fmt: skip
    a = _float(lift(A), dtype, "matrix_norm")
    d0, d1 = _matrix_dims(dim, a.ndim, "matrix_norm")
    if ord == "fro":
        return _vnorm(a, 2, axis=(d0, d1), keepdims=keepdim)
    if ord in ("nuc", 2, -2):
        s = SvdVals.apply(a, dims=(d0, d1))
        r = sum_(s, axis=-1) if ord == "nuc" else (amax if ord == 2 else amin)(s, dim=-1)
    else:
        # 1: sum over rows (d0), then the max over columns (d1); inf the other way round
        over, then = (d0, d1) if abs(ord) == 1 else (d1, d0)
        pick = amax if ord > 0 else amin
        r = pick(sum_(abs_(a), axis=over, keepdims=True), dim=then, keepdim=True)
        r = reshape(r, tuple(n for i, n in enumerate(r.shape) if i not in (d0, d1)))
    if keepdim:
        shape = list(a.shape)
        shape[d0] = shape[d1] = 1
        r = reshape(r, tuple(shape))
    return r


def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None) -> Tensor:  # noqa: N803
    """torch.linalg.norm: a vector norm over one dim (or all of a 1-D input), a matrix norm
    over two dims (or a 2-D input given ``ord``); with neither ``ord`` nor ``dim`` the 2-norm
    of all elements."""
    a = lift(A)
    if isinstance(dim, int | np.integer):
        dim = (int(dim),)
    if dim is not None and len(dim) not in (1, 2):
        raise BpcliError(f"dim must be an int or a pair of ints, got {dim!r}", "linalg.norm")
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(a, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(a, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if a.ndim not in (1, 2):
            raise BpcliError(f"given ord but no dim, the input must be 1-D or 2-D, got "
                             f"{a.ndim}-D", "linalg.norm")  # fmt: skip
        dim = (0,) if a.ndim == 1 else (-2, -1)
    if len(dim) == 2:
        return matrix_norm(a, ord, dim, keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise BpcliError(f"ord {ord!r} is a matrix norm but one dim was given", "linalg.norm")
    return vector_norm(a, ord, dim, keepdim, dtype=dtype)
