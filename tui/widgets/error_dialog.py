"""The one dialog that shows what went wrong and what to do about it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ErrorDialog(ModalScreen[None]):
    """An engine error as its message and hint; never a traceback."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("enter", "dismiss", "Close", show=False),
    ]

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__()
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Static("Error", id="error-title")
            yield Static(self.message, id="error-message", markup=False)
            yield Static(self.hint, id="error-hint", markup=False)
            yield Button("OK", id="error-ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#error-hint").display = bool(self.hint)
        self.query_one("#error-ok").focus()

    def show(self, message: str, hint: str = "") -> None:
        """Replace what the dialog says (a later error while it is open)."""
        self.message, self.hint = message, hint
        self.query_one("#error-message", Static).update(message)
        hint_widget = self.query_one("#error-hint", Static)
        hint_widget.update(hint)
        hint_widget.display = bool(hint)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss()
