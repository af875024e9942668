"""``bpcli train SPEC --workers N``: start this venv's ``mpiexec`` with N ranks of the same
command, for one machine and users who have never met MPI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bpcli.errors import BpcliError


def mpiexec_path() -> str:
    """The ``mpiexec`` beside this Python (the ``mpich`` wheel's), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise BpcliError("needs mpiexec: pip install 'bpcli[mpi]' (mpi4py and mpich)", "--workers")
    return found


def without_workers(argv: list[str]) -> list[str]:
    """``argv`` with ``--workers N`` / ``--workers=N`` removed (the ranks must not relaunch)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            out.append(a)
    return out


def launch(workers: int, argv: list[str]) -> int:
    """Run ``mpiexec -n workers python -m bpcli <argv without --workers>``; its exit status."""
    try:
        import mpi4py  # noqa: F401 - refuse before starting N processes that would all fail
    except ImportError:
        raise BpcliError("needs mpi4py: pip install 'bpcli[mpi]'", "--workers") from None
    cmd = [mpiexec_path(), "-n", str(workers), sys.executable, "-m", "bpcli",
           *without_workers(argv)]  # fmt: skip
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
