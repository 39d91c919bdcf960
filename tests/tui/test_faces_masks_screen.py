"""Faces screen: m writes each side's mask contact sheet and shows it under that side."""

from __future__ import annotations

from pathlib import Path

from maskutil import make_occlusion_model
from textual.pilot import Pilot
from textual.widgets import Static

from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.faces import FacesScreen
from tui.widgets.error_dialog import ErrorDialog
from tui.widgets.preview_image import PreviewImage


def test_m_shows_each_sides_mask_sheet(facesets_ws: Path, ui) -> None:
    make_occlusion_model(Workspace(facesets_ws), "occ", facesets=("b",))

    async def steps(pilot: Pilot) -> None:
        await pilot.press("f")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, FacesScreen)
        views = [screen.query_one(f"#masks-{side}", PreviewImage) for side in "ab"]
        assert not any(view.display for view in views)
        await pilot.press("m")
        await ui.until(pilot, lambda: all(v.loaded_path for v in views), timeout=120)
        assert not isinstance(pilot.app.screen, ErrorDialog)
        for side, view in zip("ab", views, strict=True):
            assert (
                view.display and view.loaded_path == facesets_ws / "facesets" / side / "masks.png"
            )
        status = str(screen.query_one("#faces-status", Static).render())
        assert status.startswith("B masks (occlusion model occ): ")  # B's comes last

    ui.drive(SwapdeckApp(facesets_ws), steps)
