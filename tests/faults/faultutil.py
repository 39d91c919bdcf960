"""Helpers for the fault tests: real swapdeck processes, their live events, and kills.

Test folders are not packages: pytest puts tests/faults on sys.path for the modules
here, so they import this as `from faultutil import ...`.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cliutil import SWAPDECK


def copy_workspace(root: Path, tmp_path: Path, name: str = "ws") -> Path:
    """A private copy of a session workspace (the shared one must stay untouched)."""
    target = tmp_path / name
    shutil.copytree(root, target)
    return target


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, every: float = 0.01) -> Any:
    """Poll until `predicate()` is truthy and return it; None on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def temp_files(folder: Path) -> set[Path]:
    """Half-written files (atomic writes' temporaries) anywhere under `folder`."""
    return set(folder.rglob(".*.tmp")) if folder.exists() else set()


class Running:
    """A `swapdeck ... --json` process whose event lines a thread collects as they come."""

    def __init__(self, *args: str | Path, **popen: Any) -> None:
        self.proc = subprocess.Popen(
            [SWAPDECK, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._threads = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue  # a line cut by the kill

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("type") == kind]

    def progress_done(self) -> int:
        done = self.of("progress")
        return int(done[-1]["done"]) if done else 0

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a pulled plug would: no handler runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.finish()

    def finish(self, timeout: float = 300.0) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=30)
        return code

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


def small_disk(limit: int) -> Callable[[], None]:
    """A preexec_fn: files this process writes may not grow past `limit` bytes.

    Past it write() fails with EFBIG, as on a full disk; SIGXFSZ, which would kill the
    process instead, is ignored.
    """

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files
