"""The wizard's shell: six screens, their keys, and the one place errors surface.

Each screen is a Textual mode with its own stack, built on first visit from
the current workspace. Engine work runs in thread workers on the screens; a
worker that fails lands here (Textual hands failed workers to the app), and
becomes one ErrorDialog: a SwapdeckError's message and hint, or, for a bug,
"internal error" with the traceback written to a log file.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from multiprocessing import resource_tracker
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import Input
from textual.worker import WorkerFailed

from engine.errors import SwapdeckError
from tui.widgets.error_dialog import ErrorDialog

# textual-image asks the terminal (kitty? sixel? cell size?) when it is imported, and
# must do so before Textual owns stdin: imported later, from a screen built on first
# visit, the terminal's answer arrives as keystrokes (its "c" opened Convert in tmux).
import textual_image.widget  # noqa: F401  isort: skip

DEFAULT_WORKSPACE = Path("workspace")
_SCREENS = Binding.Group("Screens")
# Screen classes by mode, imported on first visit: the chart, image and video libraries
# the other screens need stay out of start-up, so the first screen draws sooner.
SCREENS: dict[str, str] = {
    "workspace": "tui.screens.workspace:WorkspaceScreen",
    "faces": "tui.screens.faces:FacesScreen",
    "train": "tui.screens.train:TrainScreen",
    "convert": "tui.screens.convert:ConvertScreen",
    "compare": "tui.screens.compare:CompareScreen",
    "reenact": "tui.screens.reenact:ReenactScreen",
}


def screen_class(name: str) -> Callable[[Path], Screen]:
    module, _, cls = SCREENS[name].partition(":")
    return getattr(import_module(module), cls)


def log_path() -> Path:
    """Where internal errors leave their traceback (the dialog says so)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "swapdeck" / "wizard.log"


def _write_log(error: BaseException) -> Path:
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now().isoformat(timespec='seconds')}\n")
            fh.write("".join(traceback.format_exception(error)))
    except OSError:
        pass  # the dialog still tells the user what failed
    return path


def describe_error(error: BaseException) -> tuple[str, str]:
    """(message, hint) for the dialog: the engine's own words, or an internal error."""
    if isinstance(error, SwapdeckError):
        return error.message, error.hint
    path = _write_log(error)
    return (
        f"internal error: {type(error).__name__}: {error}",
        f"this is a bug in swapdeck; the traceback is in {path}",
    )


class SwapdeckApp(App[None]):
    """`swapdeck wizard`: extract, train, convert, compare and reenact, one screen each."""

    CSS_PATH = "app.tcss"
    TITLE = "swapdeck"
    # Every action has its own key in the Footer; the palette would only take its room.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        # One Footer entry "w f t c v e Screens" (each key's name is its tooltip): room at 80
        # columns.
        Binding("w", "show('workspace')", "Workspace", group=_SCREENS),
        Binding("f", "show('faces')", "Faces", group=_SCREENS),
        Binding("t", "show('train')", "Train", group=_SCREENS),
        Binding("c", "show('convert')", "Convert", group=_SCREENS),
        # v for "versus": c, o and m are taken (Convert; the screens' own keys).
        Binding("v", "show('compare')", "Compare", group=_SCREENS),
        # e for "reEnact": r is taken (the Workspace and Compare screens' own keys).
        Binding("e", "show('reenact')", "Reenact", group=_SCREENS),
        Binding("q", "quit", "Quit"),
        # Letters type into a focused field; Esc leaves it so the keys above work again.
        Binding("escape", "leave_field", "Leave field", key_display="esc"),
    ]

    def __init__(self, workspace: Path | None = None) -> None:
        super().__init__()
        # Extract's worker pool needs multiprocessing's resource tracker, which is started
        # with sys.stderr's file descriptor; while the app runs, sys.stderr is Textual's
        # capture, which has none. So start it now, while stderr is still the real one.
        resource_tracker.ensure_running()
        self.workspace = Path(workspace) if workspace is not None else DEFAULT_WORKSPACE
        for name in SCREENS:
            self.add_mode(name, self._factory(name))

    def _factory(self, name: str) -> Callable[[], Screen]:
        # Reads self.workspace when the screen is built, so a rebuilt mode sees the new one.
        return lambda: screen_class(name)(self.workspace)

    def on_mount(self) -> None:
        self.sub_title = str(self.workspace)
        self.switch_mode("workspace")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a dialog is up, switching screens would leave it behind on another stack.
        if action == "show":
            return not isinstance(self.screen, ModalScreen)
        if action == "leave_field":
            return isinstance(self.focused, Input)
        return True

    def action_leave_field(self) -> None:
        """Focus the next widget that is not a text field (or nothing)."""
        chain = self.screen.focus_chain
        start = chain.index(self.focused) if self.focused in chain else -1
        after = chain[start + 1 :] + chain[: start + 1]
        self.screen.set_focus(next((w for w in after if not isinstance(w, Input)), None))

    def action_show(self, name: str) -> None:
        self.switch_mode(name)

    async def set_workspace(self, path: Path) -> None:
        """Point the wizard at another workspace: every other screen is rebuilt for it."""
        if path == self.workspace:
            return
        self.workspace = path
        self.sub_title = str(path)
        for name in SCREENS:
            if name != self.current_mode:
                await self.remove_mode(name)
                self.add_mode(name, self._factory(name))

    # ---- errors ------------------------------------------------------------------------

    def show_error(self, error: BaseException) -> None:
        """Show `error` in the one ErrorDialog (updating it if it is already open)."""
        message, hint = describe_error(error)
        if isinstance(self.screen, ErrorDialog):
            self.screen.show(message, hint)
        else:
            self.push_screen(ErrorDialog(message, hint))

    def _handle_exception(self, error: Exception) -> None:
        # Textual routes every failed worker here (as WorkerFailed) before exiting the app;
        # engine work failing is not a reason to exit, so it becomes the dialog instead.
        if isinstance(error, WorkerFailed) and isinstance(error.error, Exception):
            self.show_error(error.error)
            return
        super()._handle_exception(error)


def run(workspace: Path | None = None) -> None:
    SwapdeckApp(workspace).run()
