"""The one place mpi4py is imported: the world communicator and the few collectives used."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bpcli.errors import BpcliError


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise BpcliError("several ranks need mpi4py: pip install 'bpcli[mpi]'", "mpiexec") from None
    return MPI


class Comm:
    """``MPI.COMM_WORLD`` with the ranks of this machine counted (for thread counts)."""

    def __init__(self):
        self.MPI = _mpi()
        self.world = self.MPI.COMM_WORLD
        self.rank, self.size = self.world.Get_rank(), self.world.Get_size()
        local = self.world.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_size = local.Get_size()
        local.Free()

    def allreduce_(self, buf: np.ndarray) -> None:
        """Sum ``buf`` over the ranks, in place (the gradient buffer: no copy)."""
        self.world.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def bcast_(self, arr: np.ndarray, root: int = 0) -> None:
        self.world.Bcast(arr, root=root)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.world.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return self.world.allgather(obj)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return self.world.gather(obj, root=root)

    def abort(self, code: int) -> None:
        self.world.Abort(code)


def threads_per_rank(local_size: int) -> int:
    """The cores of this machine divided among its ranks (at least one each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(local_size, 1))
