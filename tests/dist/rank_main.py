"""A rank's program for the fault tests: ``bpcli`` with one failure injected, as bad data on
one host or a killed process would cause it.

    python rank_main.py --fail RANK:STEP:raise|kill -- train SPEC ...

At the given step (counted from 1 in this process) of the given rank, the step's allreduce
raises a BpcliError (as a corrupt batch would) or the process SIGKILLs itself.
"""

from __future__ import annotations

import os
import signal
import sys

from bpcli.dist import parallel
from bpcli.errors import BpcliError


def inject(rank: int, step: int, kind: str) -> None:
    original = parallel.DataParallel.reduce_step
    count = [0]

    def reduce_step(self, *args, **kwargs):
        count[0] += 1
        if self.rank == rank and count[0] == step:
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise BpcliError("sample 17 has 63 features, expected 64", "digits.npz")
        return original(self, *args, **kwargs)

    parallel.DataParallel.reduce_step = reduce_step


if __name__ == "__main__":
    argv = sys.argv[1:]
    split = argv.index("--")
    for i, a in enumerate(argv[:split]):
        if a == "--fail":
            r, s, k = argv[i + 1].split(":")
            inject(int(r), int(s), k)
    sys.argv = ["bpcli", *argv[split + 1 :]]
    from bpcli.cli import main

    main()
