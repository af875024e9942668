"""``mpiexec -n N bpcli sweep ...``: the grid's trials spread over the ranks (trial i on rank
i mod N), each trained in one process; rank 0 gathers them in grid order, writes sweep.json
and runs.csv and draws the heatmap."""

from __future__ import annotations

import os
from pathlib import Path


def map_over_ranks(par):
    """The ``map_runs`` that ``experiments.sweep.sweep`` takes: ``fn(*args)`` for this rank's
    share of ``args_list``; the results of all, in order, on rank 0 (None elsewhere)."""

    def map_runs(fn, args_list):
        # The run directories hold the sweep folder, whose default name has a timestamp that
        # may differ between ranks: the rest must agree, rank 0's folder is used.
        par.agree({"sweep grid": repr([a[:5] + a[6:] for a in args_list])})
        ours = args_list
        args_list = par.comm.bcast(args_list)
        if ours and ours != args_list:
            _remove_if_empty(Path(ours[0][5]).parent)
        mine = [(i, fn(*a)) for i, a in enumerate(args_list) if i % par.size == par.rank]
        parts = par.comm.gather(mine)
        if parts is None:
            return None
        return [run for _, run in sorted((p for part in parts for p in part), key=lambda t: t[0])]

    return map_runs


def _remove_if_empty(folder: Path) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass  # not empty, or gone: not ours to clear
