"""bpcli.dist is optional: one process never imports it (nor mpi4py); the pure helpers."""

from __future__ import annotations

import sys

from bpcli.dist.launch import without_workers
from bpcli.dist.parallel import shard_bounds
from tests.dist.mpi_helpers import MODELS, run

PROBE = """
import sys
from click.testing import CliRunner
from bpcli.cli.group import cli
import bpcli.cli
r = CliRunner().invoke(cli, ["train", sys.argv[1], "--epochs", "1", "--out", sys.argv[2], "-q"])
assert r.exit_code == 0, r.output
print(sorted(m for m in sys.modules if m.startswith(("mpi4py", "bpcli.dist"))))
"""


def test_one_process_imports_neither_mpi4py_nor_bpcli_dist(tmp_path):
    r = run([sys.executable, "-c", PROBE, str(MODELS / "spirals.toml"), str(tmp_path / "run")],
            120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_shards_are_disjoint_contiguous_and_cover_the_batch():
    for n in (2, 3, 9, 32, 33):
        for size in (1, 2, 3, 4):
            if n < size:
                continue
            parts = [shard_bounds(n, r, size) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [hi - lo for lo, hi in parts]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_the_ranks_command_line_has_no_workers_option():
    assert without_workers(["train", "s.toml", "--workers", "2", "-q"]) == ["train", "s.toml", "-q"]
    assert without_workers(["train", "--workers=4", "s.toml"]) == ["train", "s.toml"]
