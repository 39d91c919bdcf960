"""Run the fault and hostile-input suites and count what survived.

    .venv/bin/python bench/faults.py [extra pytest args]

Prints one line per kind of trial, `<what>: <ok> / <tried>`. Each test in tests/faults
and tests/inputs names its line with `@pytest.mark.report(...)`; a test that makes
several trials itself (the training kill loop) records "tried" and "ok". A trial is
only ok when its test passed, which means nothing was lost or damaged.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SUITES = ["tests/faults", "tests/inputs"]


class Tally:
    """A pytest plugin adding up each report line's trials, test by test."""

    def __init__(self) -> None:
        # nodeid -> [what, tried, ok, outcome]; outcome is the worst of its phases.
        self.tests: dict[str, list[Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        if "report" not in props:
            return
        entry = self.tests.setdefault(report.nodeid, [props["report"], 1, None, "passed"])
        entry[1] = int(props.get("tried", entry[1]))
        if "ok" in props:
            entry[2] = int(props["ok"])
        if report.failed:
            entry[3] = "failed"
        elif report.skipped and entry[3] == "passed":
            entry[3] = "skipped"

    def lines(self) -> dict[str, tuple[int, int, int]]:
        """what -> (ok, tried, skipped tests)."""
        out: dict[str, tuple[int, int, int]] = {}
        for what, tried, ok, outcome in self.tests.values():
            total_ok, total, skipped = out.get(what, (0, 0, 0))
            if outcome == "skipped":
                out[what] = (total_ok, total, skipped + 1)
                continue
            # A failed test counts what it says survived, but never all of its trials.
            good = tried if ok is None else min(ok, tried)
            if outcome == "failed":
                good = min(ok or 0, tried - 1)
            out[what] = (total_ok + good, total + tried, skipped)
        return out


def main(argv: list[str]) -> int:
    tally = Tally()
    start = time.monotonic()
    # Serially (-n 0): the trials time their kills against a machine doing nothing else.
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-n", "0", *SUITES, *argv], plugins=[tally])
    print()
    for what, (ok, tried, skipped) in tally.lines().items():
        note = f"   ({skipped} skipped on this machine)" if skipped else ""
        print(f"{what}: {ok} / {tried}{note}")
    print(f"(pytest exit {int(code)}, {time.monotonic() - start:.0f} s)")
    return int(code)


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    # As `python -m pytest` would run them: the checkout first on sys.path, not this
    # folder (its train.py and convert.py are not the modules the tests mean).
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]
    sys.exit(main(sys.argv[1:]))
