"""Workspace screen: a real workspace's facesets, models and jobs; opening and creating one."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from engine.facesets import list_facesets
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.workspace import WorkspaceScreen


def _rows(pilot: Pilot, selector: str) -> list[list[object]]:
    table = pilot.app.screen.query_one(selector, DataTable)
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


def _status(pilot: Pilot) -> str:
    return str(pilot.app.screen.query_one("#ws-status", Static).render())


def test_lists_the_facesets_and_models_of_a_real_workspace(
    sample_workspace: Workspace, tiny_model: str, ui
) -> None:
    expected = {f["name"]: f for f in list_facesets(sample_workspace)}

    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        for size in [(80, 24), (120, 40), (80, 24)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            facesets = {row[0]: row for row in _rows(pilot, "#ws-facesets")}
            assert set(facesets) == set(expected) >= {"a", "b"}
            for name, row in facesets.items():
                assert row[1:3] == [expected[name]["faces"], expected[name]["size"]]
            models = {row[0]: row for row in _rows(pilot, "#ws-models")}
            # tiny_model trains 120 steps; metrics.jsonl's last line says so.
            assert models[tiny_model] == [tiny_model, "tiny", 64, "a", "b", 120]
            assert _status(pilot).startswith(f"{len(expected)} faceset(s), {len(models)} model(s)")
            assert "0 running job(s)" in _status(pilot)
            assert pilot.app.screen.query_one("#ws-facesets").region.height > 0

    ui.drive(SwapdeckApp(sample_workspace.root), steps)


def test_a_missing_workspace_is_offered_and_created_on_open(tmp_path: Path, ui) -> None:
    target = tmp_path / "new_ws"

    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        assert isinstance(pilot.app.screen, WorkspaceScreen)
        assert _status(pilot) == "not created yet: Open (o) creates it"
        assert not target.exists()
        await pilot.press("o")  # the table has the focus: o opens the path in the field
        await ui.settle(pilot)
        assert (target / "facesets").is_dir() and (target / "models").is_dir()
        assert _status(pilot) == "0 faceset(s), 0 model(s), 0 running job(s)"
        assert _rows(pilot, "#ws-facesets") == [] and _rows(pilot, "#ws-models") == []

    ui.drive(SwapdeckApp(target), steps)


def test_typing_a_path_and_enter_opens_it(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        await ui.type_into(pilot, "#ws-path", str(tmp_path / "typed"))
        await pilot.press("enter")
        await ui.settle(pilot)
        assert pilot.app.workspace == tmp_path / "typed"
        assert (tmp_path / "typed" / "outputs").is_dir()
        assert pilot.app.sub_title == str(tmp_path / "typed")

    ui.drive(SwapdeckApp(tmp_path / "first"), steps)
