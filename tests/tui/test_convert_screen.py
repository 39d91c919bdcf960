"""Convert screen: convert a short clip with a tiny model, preview, verify, score; errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import info, short_clip
from textual.pilot import Pilot
from textual.widgets import Select, Static
from textual_image.widget import Image

from engine.provenance import verify
from tui.app import SwapdeckApp
from tui.screens.convert import ConvertScreen
from tui.widgets.error_dialog import ErrorDialog


async def _open_convert(pilot: Pilot, ui, source: Path) -> ConvertScreen:
    await pilot.press("c")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ConvertScreen)
    await ui.type_into(pilot, "PathField Input", str(source))
    await pilot.press("escape")
    return screen


def test_convert_a_clip_then_verify_and_score_it(ws_copy: Path, tmp_path: Path, ui) -> None:
    clip = short_clip(tmp_path / "clip.mp4", 0.6)
    output = ws_copy / "outputs" / "clip_tiny.mp4"

    async def steps(pilot: Pilot) -> None:
        screen = await _open_convert(pilot, ui, clip)
        assert screen.query_one("#model", Select).value == "tiny"
        await pilot.press("x")
        await ui.settle(pilot)
        assert not isinstance(pilot.app.screen, ErrorDialog), pilot.app.screen
        shown = str(screen.query_one("#convert-result", Static).render()).splitlines()
        frames = info(clip)["frames"]  # 0.6 s of the sample clip
        assert shown[0].startswith(f"output: {output} ({frames} frames, ")
        assert shown[1].startswith("verify: marked=true")
        assert shown[2].startswith("score: identity retrieval ")
        assert " nme 0." in shown[2] and " stability ratio " in shown[2]
        assert str(screen.query_one("#convert-status", Static).render()) == "done"

    ui.drive(SwapdeckApp(ws_copy), steps)
    assert output.is_file()
    assert verify(output).marked


@pytest.mark.slow
def test_preview_renders_before_after_frames_and_shows_them(
    ws_copy: Path, tmp_path: Path, ui
) -> None:
    clip = short_clip(tmp_path / "clip.mp4", 0.6)
    png = ws_copy / "outputs" / "clip_tiny_preview.png"

    async def steps(pilot: Pilot) -> None:
        screen = await _open_convert(pilot, ui, clip)
        await pilot.press("p")
        await ui.settle(pilot)
        assert png.is_file()
        assert screen.query_one("#convert-preview", Image).image is not None
        assert str(screen.query_one("#convert-status", Static).render()) == f"preview: {png}"

    ui.drive(SwapdeckApp(ws_copy), steps)


@pytest.mark.slow
def test_a_missing_input_is_one_error_dialog(ws_copy: Path, tmp_path: Path, ui) -> None:
    missing = tmp_path / "nowhere.mp4"

    async def steps(pilot: Pilot) -> None:
        await _open_convert(pilot, ui, missing)
        await pilot.press("x")
        await ui.settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert (dialog.message, dialog.hint) == (f"{missing} does not exist", "check the path")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConvertScreen)
        # Nothing was written.
        assert not any((ws_copy / "outputs").glob("nowhere*"))

    ui.drive(SwapdeckApp(ws_copy), steps)


def test_offers_converting_models_and_their_directions(
    fast_swap_model: tuple, ws_copy: Path, tmp_path: Path, ui
) -> None:
    """A fomm model (it reenacts) is not offered; a fast-swap model converts only a-to-b,
    an autoencoder both ways."""
    import shutil

    fs_ws, fs_name, _ = fast_swap_model
    shutil.copytree(fs_ws.model_dir(fs_name), ws_copy / "models" / fs_name)
    fomm = ws_copy / "models" / "mover"
    fomm.mkdir()
    (fomm / "model.toml").write_text('family = "fomm"\npreset = "fomm-small"\n')
    (fomm / "checkpoint.safetensors").write_bytes(b"")  # "trained", as far as listing goes

    async def steps(pilot: Pilot) -> None:
        screen = await _open_convert(pilot, ui, tmp_path)
        model = screen.query_one("#model", Select)
        direction = screen.query_one("#direction", Select)
        offered = [str(value) for _, value in model._options if value != Select.NULL]
        assert offered == [fs_name, "tiny"]
        model.value = fs_name
        await pilot.pause()
        assert [v for _, v in direction._options if v != Select.NULL] == ["a-to-b"]
        model.value = "tiny"
        await pilot.pause()
        assert [v for _, v in direction._options if v != Select.NULL] == ["a-to-b", "b-to-a"]

    ui.drive(SwapdeckApp(ws_copy), steps)
