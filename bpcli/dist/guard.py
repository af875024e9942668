"""Run one rank's command so that no error leaves the others waiting in a collective.

Before the ranks' agreement point (``DataParallel.agree``) an error is handed to that same
collective, so every rank learns of it, rank 0 prints it once and all exit 2. After it, a
rank that raises prints its one line (naming the rank) and calls ``MPI_Abort``: mpiexec then
ends every rank, and the checkpoint on disk is the last complete one (writes are atomic).
"""

from __future__ import annotations

import sys
import traceback

import click

from bpcli.dist.comm import Comm, threads_per_rank
from bpcli.dist.parallel import AgreedError, DataParallel
from bpcli.errors import BpcliError


class Guard:
    def __init__(self, par: DataParallel):
        self.par = par

    def run(self, fn) -> None:
        par = self.par
        try:
            fn()
        except AgreedError as e:
            if par.rank == 0:
                click.echo(f"bpcli: {e}", err=True)
            sys.exit(2)
        except SystemExit as e:
            # Every rank reaches the same exit after training (same decisions everywhere);
            # before the agreement point, an exit on one rank is a failure of that rank.
            if not par.setup_done and e.code not in (0, None):
                self._fail_before(f"exited with status {e.code}")
            raise
        except BpcliError as e:
            if not par.setup_done:
                self._fail_before(str(e))
            self._abort(f"bpcli: {e} (rank {par.rank} of {par.size})", 2)
        except KeyboardInterrupt:
            self._abort(f"bpcli: interrupted on rank {par.rank}; the last checkpoint is kept", 130)
        except BaseException:
            traceback.print_exc()
            self._abort(f"bpcli: rank {par.rank} of {par.size} failed (traceback above)", 1)

    def _fail_before(self, message: str) -> None:
        """Hand the error to the agreement collective the other ranks wait in."""
        try:
            self.par.agree(None, failed=message)
        except AgreedError as e:
            if self.par.rank == 0:
                click.echo(f"bpcli: {e}", err=True)
            sys.exit(2)

    def _abort(self, line: str, code: int) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.par.comm.abort(code)


def run_rank(fn, threads: int | None) -> None:
    """``fn(par)`` on this rank, guarded; BLAS/Numba get ``threads`` (default: this machine's
    cores divided among its ranks)."""
    import bpcli

    par = DataParallel(Comm())
    bpcli.set_num_threads(threads or threads_per_rank(par.comm.local_size))
    Guard(par).run(lambda: fn(par))
