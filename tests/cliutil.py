"""Running swapdeck the way a user does, and checking how it fails.

In-process through typer's CliRunner (fast), or as a real process (to kill it, limit
its file size or block its network). Test folders are not packages: import this as
`from cliutil import ...` (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

SWAPDECK = str(Path(sys.executable).with_name("swapdeck"))
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_runner = CliRunner()


def plain(text: str) -> str:
    return _ANSI.sub("", text)


def swapdeck(*args: str | Path) -> Result:
    """One command in this process; typer's CliRunner catches its exit."""
    from engine.cli import app

    return _runner.invoke(app, [str(a) for a in args])


def swapdeck_process(
    *args: str | Path, timeout: float = 300, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """One command as its own process, as a shell would start it."""
    return subprocess.run(
        [SWAPDECK, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def error_line(stderr: str, output: str = "") -> str:
    """The single `error:` line of a failed command; fails the test on a traceback."""
    text = plain(stderr)
    assert "Traceback" not in text + output, text + output
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"wanted one error line, got:\n{text}"
    return errors[0]


def assert_fails(result: Result, code: int, *needles: str) -> str:
    """One `error:` line holding every needle, exit `code`, no traceback; returns the line."""
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{result.output}"
    # CliRunner turns an escaped exception into exit 1 with result.exception set; a user
    # mistake must leave only the SystemExit that typer.Exit becomes.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    line = error_line(result.stderr, result.output)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def assert_process_fails(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """As assert_fails, for a command run with swapdeck_process."""
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}:\n{done.stderr}"
    line = error_line(done.stderr, done.stdout)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line
