"""The Train screen shows the ETA the engine sent, not one it works out from the step cap.

A time-limited stint with a billion-step cap must read minutes, not years: the
engine's `eta_s` already follows whichever limit ends the run first.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from engine.events import Metrics
from tui.app import SwapdeckApp
from tui.screens.train import JobEvents, TrainScreen


def test_the_stats_panel_shows_the_engines_eta(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        await pilot.press("t")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
        screen = pilot.app.screen
        await ui.settle(pilot)
        screen.following = True  # as if attached to a job
        event = Metrics(
            step=40,
            losses={"a": 0.5, "b": 0.6},
            examples_per_s=8.0,  # 1 s a step: the step cap alone would say 31 years
            extra={"total_steps": 1e9, "eta_s": 100.0, "lr": 3e-4},
        )
        screen.post_message(JobEvents(screen._generation, [event]))
        stats = screen.query_one("#stats", Static)
        await ui.until(pilot, lambda: "step    40" in str(stats.render()), 5)
        assert "ETA     0:01:40" in str(stats.render())
        screen.following = False

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)
