"""Shared pieces for the wizard's Pilot tests: running an app, waiting for its workers.

The helpers come as the `ui` fixture (test modules here are not a package, so
they cannot import each other).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.worker import Worker, WorkerState

SIZE = (80, 24)
# Worker groups of the workspace, faces and convert screens (and app.run_worker's default).
OUR_GROUPS = frozenset({"listing", "jobs", "extract", "convert", "default"})
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


class Tui:
    size = SIZE

    @staticmethod
    def drive(
        app: App, steps: Callable[[Pilot], Awaitable[None]], size: tuple[int, int] = SIZE
    ) -> None:
        """Run `app` headless at `size` and hand its Pilot to `steps` (sync tests, no plugin)."""

        async def main() -> None:
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                await steps(pilot)

        asyncio.run(main())

    @staticmethod
    async def settle(pilot: Pilot, timeout: float = 300) -> None:
        """Wait until this project's screens' workers are done and their messages handled.

        Only the groups these tests start: the Train screen's panels poll for ever.
        """

        def busy() -> list[Worker]:
            return [
                w
                for w in pilot.app.workers
                if w.group in OUR_GROUPS and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            ]

        await Tui.until(pilot, lambda: not busy(), timeout, what=busy)
        await pilot.pause()
        await pilot.pause()

    @staticmethod
    async def until(
        pilot: Pilot,
        check: Callable[[], object],
        timeout: float = 300,
        what: Callable[[], object] = lambda: "",
    ) -> None:
        """Let the app run until `check()` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for the screen {what()}")
            await pilot.pause(0.05)

    @staticmethod
    async def type_into(pilot: Pilot, selector: str, text: str) -> None:
        """Focus a text field, clear it and type `text` key by key, as a user would."""
        field = pilot.app.screen.query_one(selector)
        field.focus()
        await pilot.pause()
        field.value = ""
        await pilot.press(*text)


@pytest.fixture
def ui() -> type[Tui]:
    return Tui


@pytest.fixture(autouse=True)
def wizard_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Internal-error tracebacks go to a log under XDG_STATE_HOME: keep it in tmp."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "swapdeck" / "wizard.log"


def copy_photos(src: Path, dst: Path, count: int) -> Path:
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.jpg"))[:count]:
        shutil.copy(p, dst / p.name)
    return dst


@pytest.fixture(scope="session")
def few_photos_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six photos of A: enough for a faceset, quick to extract."""
    return copy_photos(SAMPLE / "a", tmp_path_factory.mktemp("few") / "a", 6)


@pytest.fixture
def ws_copy(sample_workspace, tiny_model: str, tmp_path: Path) -> Path:
    """A private copy of the sample workspace (facesets a, b; model `tiny`) to write into."""
    dst = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, dst)
    return dst
