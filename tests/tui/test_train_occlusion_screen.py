"""The Train screen with an occlusion preset: no faceset A or B rows, the inputs a
multi-select of EVERY faceset (an occlusion mask has no target person), the stats
naming its loss, and what a start asks for.

The workspace holds the sample facesets `a` and `b` and `c`, a copy of `a`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select, SelectionList, Static
from trainformutil import form_inputs, start_recorded

from engine import jobs
from tui.app import SwapdeckApp
from tui.screens.train import TrainScreen


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    shutil.copytree(facesets_ws / "facesets" / "a", facesets_ws / "facesets" / "c")
    return facesets_ws


def test_an_occlusion_preset_takes_every_faceset_as_inputs(
    ws: Path, ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    def fake_start(workspace, model, requested, run):  # records instead of training
        started.append(requested)
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(jobs, "start_train", fake_start)

    async def steps(pilot: Pilot) -> None:
        await pilot.press("t")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
        await ui.settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#preset", Select).value = "fast-swap-small"
        await ui.until(pilot, lambda: form_inputs(screen)[0] == ["a", "c"], 10)  # all but B's

        screen.query_one("#preset", Select).value = "occlusion-small"
        # No A or B: every faceset is an input, all ticked.
        await ui.until(pilot, lambda: form_inputs(screen) == (["a", "b", "c"], ["a", "b", "c"]), 10)
        assert screen.has_class("-no-faceset-a") and screen.has_class("-no-faceset-b")
        await ui.until(
            pilot, lambda: "mask" in str(screen.query_one("#stats", Static).render()), 60
        )
        await start_recorded(pilot, ui, screen)

        box = screen.query_one("#inputs", SelectionList)
        box.deselect("b")
        await pilot.pause()
        await start_recorded(pilot, ui, screen)

    ui.drive(SwapdeckApp(ws), steps)
    assert len(started) == 2
    everything, chosen = started
    assert everything["preset"] == "occlusion-small"
    assert everything["inputs"] == ()  # all ticked: the family's default, every faceset
    assert chosen["inputs"] == ("a", "c")
    assert everything.get("faceset_a") is None and everything.get("faceset_b") is None
