"""The command line as a user meets it: version, help, errors as one line."""

import subprocess
import sys
import time

from click.testing import CliRunner

import bpcli
from bpcli.cli import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert bpcli.__version__ in result.output


def test_help_lists_commands_and_is_fast():
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bpcli", "--help"], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0
    assert "bench" in out.stdout
    assert elapsed < 2.0  # generous for a loaded CI machine; typically ~0.1 s


def test_unknown_option_is_a_one_line_usage_error():
    result = CliRunner().invoke(cli, ["bench", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert "Traceback" not in result.output


def test_user_error_is_one_line_on_stderr_with_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "bpcli", "bench", "--only", "nosuch", "--no-startup"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("bpcli: --only: unknown workload nosuch; known: mlp, cnn")
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_ops_table_lists_every_registered_op():
    import json

    from bpcli.engine.op import OPS

    result = CliRunner().invoke(cli, ["ops", "--json"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["name"] for r in rows} == set(OPS)
    assert all(r["formula"] for r in rows)


def test_bench_runs_and_reports_a_ratio():
    result = CliRunner().invoke(
        cli, ["bench", "--only", "mlp", "--repeat", "3", "--no-startup", "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    row = json.loads(result.output.splitlines()[0])
    assert row["workload"] == "mlp" and row["bpcli_ms"] > 0


def test_bench_measures_what_diagnostics_cost():
    import json

    result = CliRunner().invoke(cli, ["bench", "--diagnostics", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {(r["reporter"], r["mode"]) for r in rows} == {
        (rep, mode) for rep in ("terminal", "json") for mode in ("off", "epoch", "every step")
    }
    assert all(r["epoch_ms"] > 0 for r in rows)
