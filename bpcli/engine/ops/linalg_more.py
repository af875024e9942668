"""torch's fixed-rank products (mm, bmm, mv, dot, vdot, outer), their fused-add forms (addmm,
addmv, baddbmm), cross and bilinear.

All are composites of ``matmul``, ``einsum`` and elementwise ops, so their gradients and ONNX
export come from those; what this module adds is torch's stricter argument checks (exact
ranks, equal dtypes, no batch broadcasting in bmm) and the ``beta``/``alpha`` rules.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.ops.einsum import einsum
from bpcli.engine.ops.elementwise import mul, sub
from bpcli.engine.ops.index import index_select
from bpcli.engine.ops.linalg import MatMul
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "addmm", "addmv", "baddbmm", "bilinear", "bmm", "cross", "dot", "mm", "mv", "outer", "vdot",
]  # fmt: skip


def _ranked(opname: str, names_ranks, *xs) -> list[Tensor]:
    """The operands as tensors of the given ranks and one dtype (torch's checks)."""
    ts = [lift(x) for x in xs]
    for t, (name, rank) in zip(ts, names_ranks, strict=True):
        if t.ndim != rank:
            raise BpcliError(f"{name} must be a {rank}-D tensor, got shape {t.shape}", opname)
    dts = {t.dtype for t in ts}
    if len(dts) > 1:
        raise BpcliError(f"operands of different dtypes {sorted(map(str, dts))}: cast one "
                         "(as torch, no promotion)", opname)  # fmt: skip
    return ts


def _inner(opname: str, a: Tensor, b: Tensor, ka: int, kb: int) -> None:
    if a.shape[ka] != b.shape[kb]:
        raise BpcliError(f"shapes {a.shape} and {b.shape} cannot be multiplied "
                         f"({a.shape[ka]} != {b.shape[kb]})", opname)  # fmt: skip


def mm(input, mat2) -> Tensor:
    """Matrix product of two 2-D tensors (n, m) @ (m, p) -> (n, p)."""
    a, b = _ranked("mm", (("input", 2), ("mat2", 2)), input, mat2)
    _inner("mm", a, b, 1, 0)
    return MatMul.apply(a, b)


def bmm(input, mat2) -> Tensor:
    """Batched matrix product (b, n, m) @ (b, m, p) -> (b, n, p); batches must be equal."""
    a, b = _ranked("bmm", (("input", 3), ("mat2", 3)), input, mat2)
    if a.shape[0] != b.shape[0]:
        raise BpcliError(f"batch sizes differ: {a.shape} and {b.shape} (bmm does not "
                         "broadcast; use matmul)", "bmm")  # fmt: skip
    _inner("bmm", a, b, 2, 1)
    return MatMul.apply(a, b)


def mv(input, vec) -> Tensor:
    """Matrix-vector product (n, m) @ (m,) -> (n,)."""
    a, v = _ranked("mv", (("input", 2), ("vec", 1)), input, vec)
    _inner("mv", a, v, 1, 0)
    return MatMul.apply(a, v)


def dot(input, tensor) -> Tensor:
    """Inner product of two 1-D tensors of the same size (a 0-d tensor)."""
    a, b = _ranked("dot", (("input", 1), ("tensor", 1)), input, tensor)
    if a.shape != b.shape:
        raise BpcliError(f"1-D tensors of different sizes {a.shape[0]} and {b.shape[0]}", "dot")
    return MatMul.apply(a, b)


def vdot(input, other) -> Tensor:
    """``dot`` with the first argument conjugated; bpcli's tensors are real, so it is ``dot``."""
    a, b = _ranked("vdot", (("input", 1), ("other", 1)), input, other)
    if a.shape != b.shape:
        raise BpcliError(f"1-D tensors of different sizes {a.shape[0]} and {b.shape[0]}", "vdot")
    return MatMul.apply(a, b)


def outer(input, vec2) -> Tensor:
    """Outer product of two 1-D tensors (n,) x (m,) -> (n, m)."""
    a, b = lift(input), lift(vec2)
    for name, t in (("input", a), ("vec2", b)):
        if t.ndim != 1:
            raise BpcliError(f"{name} must be a 1-D tensor, got shape {t.shape}", "outer")
    return mul(reshape(a, (a.shape[0], 1)), reshape(b, (1, b.shape[0])))


def _scaled_add(opname: str, input, product: Tensor, beta, alpha) -> Tensor:
    """beta * input + alpha * product; with beta == 0 input is ignored (nan and inf in it do
    not propagate), as torch documents."""
    out = product if alpha == 1 else mul(product, alpha)
    if beta == 0:
        # torch still checks that input broadcasts to the result
        _broadcasts(opname, lift(input).shape, product.shape)
        return out
    inp = lift(input, product)
    if inp.dtype != product.dtype:
        raise BpcliError(f"input is {inp.dtype} but the product is {product.dtype}", opname)
    _broadcasts(opname, inp.shape, product.shape)
    return (inp if beta == 1 else mul(inp, beta)) + out


def _broadcasts(opname: str, shape, to) -> None:
    try:
        ok = np.broadcast_shapes(shape, to) == tuple(to)
    except ValueError:
        ok = False
    if not ok:
        raise BpcliError(f"input of shape {shape} does not broadcast to {tuple(to)}", opname)


def _coef(opname: str, beta, alpha) -> None:
    for name, v in (("beta", beta), ("alpha", alpha)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            raise BpcliError(f"{name} must be a number, got {v!r}", opname)


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)``; input broadcasts to (n, p)."""
    _coef("addmm", beta, alpha)
    a, b = _ranked("addmm", (("mat1", 2), ("mat2", 2)), mat1, mat2)
    _inner("addmm", a, b, 1, 0)
    return _scaled_add("addmm", input, MatMul.apply(a, b), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``; input broadcasts to (n,)."""
    _coef("addmv", beta, alpha)
    a, v = _ranked("addmv", (("mat", 2), ("vec", 1)), mat, vec)
    _inner("addmv", a, v, 1, 0)
    return _scaled_add("addmv", input, MatMul.apply(a, v), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``; input broadcasts to (b, n, p)."""
    _coef("baddbmm", beta, alpha)
    return _scaled_add("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def cross(input, other, dim: int | None = None) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (torch.cross; operands broadcast).

    With ``dim=None`` it is the first dim of size 3, as torch's (deprecated) default;
    ``bpcli.linalg.cross`` defaults to the last dim.
    """
    a, b = lift(input), lift(other)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise BpcliError(f"shapes {a.shape} and {b.shape} do not broadcast", "cross") from None
    if a.ndim != b.ndim:
        raise BpcliError(f"inputs must have the same number of dims, got {a.shape} and "
                         f"{b.shape}", "cross")  # fmt: skip
    if dim is None:
        dims = [d for d, n in enumerate(shape) if n == 3]
        if not dims:
            raise BpcliError(f"no dimension of size 3 in {shape}", "cross")
        dim = dims[0]
    if not isinstance(dim, int | np.integer) or not -len(shape) <= dim < len(shape):
        raise BpcliError(f"dim {dim!r} is out of range for {len(shape)} dims", "cross")
    dim = int(dim) % len(shape)
    if a.shape[dim] != 3 or b.shape[dim] != 3:
        raise BpcliError(f"inputs must have size 3 in dim {dim}, got {a.shape} and {b.shape}",
                         "cross")  # fmt: skip
    # c_i = a_{i+1} b_{i+2} - a_{i+2} b_{i+1}: two cyclic shifts of each operand
    nxt, nxt2 = np.array([1, 2, 0]), np.array([2, 0, 1])
    a1, a2 = index_select(a, dim, nxt), index_select(a, dim, nxt2)
    b1, b2 = index_select(b, dim, nxt), index_select(b, dim, nxt2)
    return sub(mul(a1, b2), mul(a2, b1))


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """``y_o = x1^T W_o x2 + b_o`` (torch.nn.functional.bilinear).

    input1 (*, in1), input2 (*, in2) with equal leading dims, weight (out, in1, in2),
    bias (out,).
    """
    x1, x2, w = lift(input1), lift(input2), lift(weight)
    if w.ndim != 3:
        raise BpcliError(f"weight must be 3-D (out, in1, in2), got {w.shape}", "bilinear")
    if x1.ndim == 0 or x2.ndim == 0 or x1.shape[:-1] != x2.shape[:-1]:
        raise BpcliError(f"input1 {x1.shape} and input2 {x2.shape} must have the same "
                         "leading dims", "bilinear")  # fmt: skip
    if x1.shape[-1] != w.shape[1] or x2.shape[-1] != w.shape[2]:
        raise BpcliError(f"inputs {x1.shape}, {x2.shape} do not fit weight {w.shape} "
                         "(out, in1, in2)", "bilinear")  # fmt: skip
    y = einsum("...i,oij,...j->...o", x1, w, x2)
    if bias is None:
        return y
    b = lift(bias)
    if b.shape != (w.shape[0],):
        raise BpcliError(f"bias of shape {b.shape} for weight {w.shape}", "bilinear")
    return y + b
