"""Snapshots of the workspace, faces and convert screens at 80x24.

Deterministic: the app runs in a fixed folder holding only `ws` (a copy of the
sample workspace with its `tiny` model), and is given the relative path "ws",
so no temporary path, clock or timing reaches the screen.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DirectoryTree

from tui.app import SwapdeckApp

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture
def in_fixed_folder(ws_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "snap"
    folder.mkdir()
    shutil.move(ws_copy, folder / "ws")
    for sub in ("jobs", "outputs"):  # whatever other tests left there stays out of view
        shutil.rmtree(folder / "ws" / sub, ignore_errors=True)
    monkeypatch.chdir(folder)
    return folder


def _showing(key: str, ui):
    async def run_before(pilot: Pilot) -> None:
        if key:
            await pilot.press(key)
        await ui.settle(pilot)
        trees = pilot.app.screen.query(DirectoryTree)
        await ui.until(pilot, lambda: all(t.root.children for t in trees))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("key", ["", "f", "c"], ids=["workspace", "faces", "convert"])
def test_screen_snapshot(key: str, in_fixed_folder: Path, snap_compare, ui) -> None:
    assert snap_compare(
        SwapdeckApp(Path("ws")), terminal_size=(80, 24), run_before=_showing(key, ui)
    )
