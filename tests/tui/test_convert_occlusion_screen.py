"""Convert screen: the occlusion mask is offered, the model auto would take is named, and the
before/after preview is rendered with it."""

from __future__ import annotations

from pathlib import Path

from convertmasks import colour_key_net, save_occlusion_model
from textual.pilot import Pilot
from textual.widgets import Select, Static

from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.convert import ConvertScreen
from tui.widgets.error_dialog import ErrorDialog

PHOTO = sorted((Path(__file__).resolve().parents[2] / "sample_data" / "a").glob("*.jpg"))[0]


def test_occlusion_is_offered_named_and_previewed(ws_copy: Path, ui) -> None:
    # Keyed to magenta: every pixel of the photo is face, so the preview swaps its face.
    save_occlusion_model(Workspace(ws_copy), "keyed", ("a",), colour_key_net((255, 0, 255)))
    png = ws_copy / "outputs" / f"{PHOTO.stem}_tiny_preview.png"

    async def steps(pilot: Pilot) -> None:
        await pilot.press("c")
        await ui.settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ConvertScreen)
        mask = screen.query_one("#mask", Select)
        assert [v for _, v in mask._options] == ["auto", "hull", "learned", "occlusion"]
        note = screen.query_one("#mask-note", Static)
        assert str(note.render()) == "occlusion model: keyed (auto uses it)"
        screen.query_one("#direction", Select).value = "b-to-a"  # it covers faceset a only
        await ui.settle(pilot)
        assert str(note.render()) == "occlusion model: none for faceset b"
        screen.query_one("#direction", Select).value = "a-to-b"
        mask.value = "occlusion"
        await ui.type_into(pilot, "PathField Input", str(PHOTO))
        await pilot.press("escape", "p")
        await ui.settle(pilot)
        assert not isinstance(pilot.app.screen, ErrorDialog), pilot.app.screen
        status = str(screen.query_one("#convert-status", Static).render())
        assert status == f"preview: {png} (mask occlusion: keyed)"

    ui.drive(SwapdeckApp(ws_copy), steps)
    assert png.is_file()
