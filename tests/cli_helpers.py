"""What the CLI tests share: invoking the command group and checking one-line user errors."""

from pathlib import Path

from click.testing import CliRunner

from bpcli.cli import cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MLP = str(MODELS / "mlp-digits.toml")


def run(*args):
    """``bpcli ARGS`` in-process; the result has exit_code, stdout, stderr, output."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *needles, code=2):
    """A user error: the exit code, one ``bpcli: ...`` line on stderr holding every needle,
    no traceback. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpcli: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
