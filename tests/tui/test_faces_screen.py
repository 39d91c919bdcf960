"""Faces screen: choose sources per side, extract through the screen, see faces and stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import ListView, ProgressBar, Static
from textual_image.widget import Image

from engine.facesets import describe_faceset
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.faces import FacesScreen
from tui.widgets.error_dialog import ErrorDialog
from tui.widgets.face_strip import FaceStrip


def _text(pilot: Pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


async def _open_faces(pilot: Pilot) -> FacesScreen:
    await pilot.press("f")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, FacesScreen)
    return screen


def test_extract_through_the_screen_shows_progress_faces_and_stats(
    few_photos_a: Path, tmp_path: Path, ui
) -> None:
    ws = tmp_path / "ws"

    async def steps(pilot: Pilot) -> None:
        screen = await _open_faces(pilot)
        await ui.type_into(pilot, "PathField Input", str(few_photos_a))
        await pilot.press("escape", "a")
        assert screen.sources["a"] == [few_photos_a]
        assert len(screen.query_one("#list-a", ListView)) == 1
        await ui.type_into(pilot, "#name-a", "mine")
        await pilot.press("escape", "x")
        await ui.settle(pilot)
        assert not isinstance(pilot.app.screen, ErrorDialog), pilot.app.screen.message

        summary = describe_faceset(Workspace(ws), "mine")
        assert summary["faces"] >= 5  # six photos, one face each (dlib may miss one)
        # The counts line comes only from the engine's Progress events.
        assert _text(pilot, "#faces-counts") == (
            f"A: frames 6/6 faces {summary['faces']} tracked 0 skipped 0"
        )
        bar = screen.query_one("#faces-progress", ProgressBar)
        assert (bar.total, bar.progress) == (6, 6)
        assert _text(pilot, "#stats-a").startswith(
            f"mine: {summary['faces']} faces (0 tracked), 6 source(s), 6 frames, 256 px\n"
            f"sharpness median {summary['blur']['median']:g}, "
        )
        strip = screen.query_one("#strip-a", FaceStrip)
        assert len(strip.query(Image)) == 4
        assert all(p.is_file() and p.parent.parent.name == "mine" for p in strip.paths)
        assert _text(pilot, "#faces-status").startswith("A: done")
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert strip.region.height > 0

    ui.drive(SwapdeckApp(ws), steps)
    assert (ws / "facesets" / "mine" / "faceset.sqlite").is_file()
    assert not (ws / "facesets" / "b").exists()


@pytest.mark.slow
def test_sources_and_references_are_listed_per_side_and_can_be_dropped(
    few_photos_a: Path, tmp_path: Path, ui
) -> None:
    photo = sorted(few_photos_a.glob("*.jpg"))[0]

    async def steps(pilot: Pilot) -> None:
        screen = await _open_faces(pilot)
        await ui.type_into(pilot, "PathField Input", str(few_photos_a))
        await pilot.press("escape", "b")
        await ui.type_into(pilot, "PathField Input", str(photo))
        await pilot.press("escape", "B")
        assert screen.sources == {"a": [], "b": [few_photos_a]}
        assert screen.references == {"a": [], "b": [photo]}
        listed = screen.query_one("#list-b", ListView)
        assert [str(item.query_one(Static).render()) for item in listed.children] == [
            str(few_photos_a),
            f"ref {photo}",
        ]
        listed.focus()
        listed.index = 0
        await pilot.press("delete")
        await pilot.pause()
        assert screen.sources["b"] == [] and screen.references["b"] == [photo]
        assert len(screen.query_one("#list-b", ListView)) == 1

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_extract_with_no_sources_starts_nothing(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        screen = await _open_faces(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert screen.cancel is None
        assert all(w.group != "extract" for w in pilot.app.workers)
        assert _text(pilot, "#faces-status") == "add sources to A or B first (a / b)"

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)
    assert not (tmp_path / "ws" / "facesets").exists()
