"""``mpiexec -n 2 bpcli sweep``: the trials spread over the ranks, rank 0 gathers and writes."""

from __future__ import annotations

import json

from tests.dist.mpi_helpers import MODELS, bpcli, mpi, needs_mpi

pytestmark = needs_mpi
ARGS = ("sweep", str(MODELS / "spirals.toml"), "--lr", "1e-2:1e0:3", "--init", "he,xavier",
        "--epochs", "1", "--json")  # fmt: skip


def test_sweep_over_two_ranks_equals_one_process(tmp_path):
    one = bpcli(*ARGS, "--out", "one", cwd=tmp_path)
    two = mpi(2, *ARGS, "--out", "two", cwd=tmp_path, timeout=120)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)  # one JSON object: rank 0 alone
    key = ("lr", "init", "seed", "status", "final_loss", "accuracy")
    assert [[r[k] for k in key] for r in a["runs"]] == [[r[k] for k in key] for r in b["runs"]]
    assert len(b["runs"]) == 6
    assert (tmp_path / "two" / "sweep.json").exists()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
