"""``bpcli.linalg``: the torch.linalg functions bpcli has (``bp.linalg.norm`` and friends)."""

from __future__ import annotations

from bpcli import functional  # noqa: F401 - binds the Tensor methods the ops rely on
from bpcli.engine.convert import lift
from bpcli.engine.ops.linalg import matmul
from bpcli.engine.ops.linalg_more import cross as _cross
from bpcli.engine.ops.linalg_norm import linalg_norm as norm
from bpcli.engine.ops.linalg_norm import matrix_norm, svdvals, vector_norm
from bpcli.engine.ops.shape import reshape
from bpcli.engine.tensor import Tensor

__all__ = ["cross", "matmul", "matrix_norm", "norm", "svdvals", "vector_norm"]


def cross(input, other, *, dim: int = -1) -> Tensor:
    """torch.linalg.cross: the cross product along ``dim`` (default the last), broadcasting
    the operands, also in rank."""
    a, b = lift(input), lift(other)
    # torch.linalg.cross broadcasts ranks too: left-pad the shorter one with 1s
    if a.ndim < b.ndim:
        a = reshape(a, (1,) * (b.ndim - a.ndim) + a.shape)
    elif b.ndim < a.ndim:
        b = reshape(b, (1,) * (a.ndim - b.ndim) + b.shape)
    return _cross(a, b, dim=dim)
