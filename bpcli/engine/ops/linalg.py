"""Matrix products: ``matmul`` (numpy/torch semantics) and ``linear``, the MLP hot path.

Products of a batch with one matrix are done as a single 2-D GEMM on the flattened batch:
numpy's stacked matmul calls BLAS once per matrix, which is many times slower.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.convert import pair
from bpcli.engine.op import Op, strict_float
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["linear", "matmul"]


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` where ``a`` may be batched and ``b`` is 2-D: one GEMM on the flattened batch."""
    if a.ndim <= 2:
        return a @ b
    rows = math.prod(a.shape[:-1])
    return (a.reshape(rows, a.shape[-1]) @ b).reshape((*a.shape[:-1], b.shape[1]))


class MatMul(Op):
    """z = a @ b; da = g @ b^T, db = a^T @ g (1-D sides promoted to matrices, batch dims summed)"""

    name, onnx = "matmul", "MatMul"
    reads_others_only = True

    def forward(self, a, b):
        self.a, self.b = a, b = strict_float(self.name, a, b)
        if b.ndim == 2 and a.ndim > 2:
            return _mm(a, b)
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # Put back the size-1 dims that numpy drops for 1-D operands.
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        da = db = None
        if self.needs[0]:
            da = _mm(g, b2.T) if b2.ndim == 2 else np.matmul(g, np.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                da = da[..., 0, :]
        if self.needs[1]:
            if b2.ndim == 2 and g.ndim > 2:
                # a's batch is g's batch here: sum over it inside one GEMM
                k, n = b2.shape
                rows = math.prod(g.shape[:-1])
                db = a2.reshape(rows, k).T @ g.reshape(rows, n)
            else:
                db = np.matmul(np.swapaxes(a2, -1, -2), g)
            if b.ndim == 1:
                db = db[..., 0]
        return da, db


class Linear(Op):
    """y = x @ W^T + b; dx = g @ W, dW = g^T @ x, db = sum(g) over the leading dims"""

    name, onnx = "linear", "Gemm"  # N-d inputs export as MatMul + Add

    def forward(self, x, w, *b):
        x, w = strict_float(self.name, x, w)
        rows = math.prod(x.shape[:-1])
        self.x2, self.w = x.reshape(rows, x.shape[-1]), w
        y = self.x2 @ w.T
        if b:
            y += strict_float(self.name, y, b[0])[1]
        return y.reshape((*x.shape[:-1], w.shape[0]))

    def backward(self, g):
        g2 = g.reshape(self.x2.shape[0], self.w.shape[0])
        dx = (g2 @ self.w).reshape((*g.shape[:-1], self.w.shape[1])) if self.needs[0] else None
        dw = g2.T @ self.x2 if self.needs[1] else None
        if len(self.needs) == 2:
            return dx, dw
        return dx, dw, (g2.sum(axis=0) if self.needs[2] else None)


# -- functional API -------------------------------------------------------------------------


def matmul(a, b) -> Tensor:
    """Matrix product with numpy/torch semantics (1-D vectors, broadcast batch dims)."""
    a, b = pair(a, b)
    sa, sb = a.shape, b.shape
    if a.ndim == 0 or b.ndim == 0:
        raise BpcliError(f"needs at least 1-d operands, got shapes {sa} and {sb}", "matmul")
    k_a = sa[-1]
    k_b = sb[0] if b.ndim == 1 else sb[-2]
    if k_a != k_b:
        raise BpcliError(f"inner dims differ: {sa} @ {sb} ({k_a} != {k_b})", "matmul")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise BpcliError(f"batch dims of {sa} and {sb} do not broadcast", "matmul") from None
    return MatMul.apply(a, b)


def linear(x, weight, bias=None) -> Tensor:
    """``x @ weight.T + bias`` (torch.nn.functional.linear); weight is (out, in)."""
    x, weight = pair(x, weight)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise BpcliError(
            f"input {x.shape} does not fit weight {weight.shape} "
            "(weight is (out_features, in_features))",
            "linear",
        )
    if bias is None:
        return Linear.apply(x, weight)
    bias = pair(bias, weight)[0]
    if bias.shape != (weight.shape[0],):
        raise BpcliError(f"bias of shape {bias.shape} for weight {weight.shape}", "linear")
    return Linear.apply(x, weight, bias)
