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
