"""The wizard's Train form, as its tests drive it: the inputs list and a recorded start."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import SelectionList

from tui.screens.train import TrainScreen
from tui.widgets.error_dialog import ErrorDialog


def form_inputs(screen: TrainScreen) -> tuple[list[str], list[str]]:
    """The inputs list: (every faceset listed, those ticked)."""
    box = screen.query_one("#inputs", SelectionList)
    listed = [box.get_option_at_index(i).value for i in range(box.option_count)]
    return listed, list(box.selected)


async def start_recorded(pilot: Pilot, ui, screen: TrainScreen) -> None:
    """Start; the recording stand-in for jobs.start_train fails, and its error dialog is
    closed (it would take the keys that follow)."""
    screen.action_start()
    await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog), 30)
    await pilot.press("escape")
    await ui.until(pilot, lambda: pilot.app.screen is screen, 10)
    await ui.settle(pilot)
