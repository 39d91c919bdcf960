"""The Train form's presets and choices come from the families' declarations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from engine import jobs
from engine.train import registry
from tui.app import SwapdeckApp
from tui.screens.train import TrainScreen


def test_a_presets_declared_choices_are_offered_and_sent(
    facesets_ws: Path, ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    def fake_start(workspace, model, requested, run):  # records instead of training
        started.append(requested)
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(jobs, "start_train", fake_start)
    hd = registry.family_of_preset("hd").preset("hd")

    async def steps(pilot: Pilot) -> None:
        await pilot.press("t")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
        screen = pilot.app.screen
        preset = screen.query_one("#preset", Select)
        assert [v for _, v in preset._options if v is not Select.NULL] == [
            p.name for _, p in registry.presets()
        ]
        assert not screen.has_class("-hd")  # tiny chooses nothing: no size or layout rows
        preset.value = "hd"
        await ui.until(pilot, lambda: screen.has_class("-hd"), 10)
        size = screen.query_one("#size", Select)
        assert tuple(v for _, v in size._options if v is not Select.NULL) == hd.allowed["size"]
        size.value = 160
        screen.query_one("#layout", Select).value = "liae"
        await pilot.pause()
        screen.action_start()
        await ui.until(pilot, lambda: bool(started), 30)
        preset.value = "original"
        await ui.until(pilot, lambda: not screen.has_class("-hd"), 10)

    ui.drive(SwapdeckApp(facesets_ws), steps)
    assert started[0]["preset"] == "hd"
    assert started[0]["size"] == 160 and started[0]["layout"] == "liae"
