"""``bpcli.linalg``: the torch.linalg functions bpcli has (``bp.linalg.norm`` and friends)."""

from __future__ import annotations

from bpcli import functional  # noqa: F401 - binds the Tensor methods the ops rely on
from bpcli.engine.ops.linalg import matmul
from bpcli.engine.ops.linalg_more import cross as _cross
from bpcli.engine.ops.linalg_norm import linalg_norm as norm
from bpcli.engine.ops.linalg_norm import matrix_norm, svdvals, vector_norm
from bpcli.engine.tensor import Tensor

__all__ = ["cross", "matmul", "matrix_norm", "norm", "svdvals", "vector_norm"]


def cross(input, other, *, dim: int = -1) -> Tensor:
    """torch.linalg.cross: the cross product along ``dim`` (default the last); the operands
    broadcast but must have the same number of dims."""
    return _cross(input, other, dim=dim)
