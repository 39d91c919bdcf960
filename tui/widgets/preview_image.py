"""The latest preview grid (models/<name>/previews/latest.png) as an image in the terminal.

textual-image picks the terminal's best way to draw it: kitty graphics or sixel
where the terminal has them, coloured half blocks over a plain SSH session.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

# Import before the app starts: textual-image asks the terminal what it can draw then.
from textual_image.widget import Image


class PreviewImage(Container):
    """Shows a PNG, or a line saying why there is none. `load` re-reads the file each time."""

    DEFAULT_CSS = """
    PreviewImage { height: 1fr; align: center middle; }
    PreviewImage > Image { width: auto; height: auto; max-width: 100%; max-height: 100%; }
    PreviewImage > Static { width: auto; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.loaded_path: Path | None = None

    def compose(self) -> ComposeResult:
        yield Image(None)
        yield Static("no preview yet", id="preview-note")

    def on_mount(self) -> None:
        self.query_one(Image).display = False

    def load(self, path: Path) -> bool:
        """Show `path`, read now in full: the trainer replaces the file under the same name."""
        try:
            with PILImage.open(path) as image:
                picture = image.convert("RGB")
        except (OSError, ValueError) as exc:
            self.show_note(f"no preview ({getattr(exc, 'strerror', None) or 'unreadable'})")
            return False
        widget = self.query_one(Image)
        widget.image = picture
        widget.display = True
        self.query_one("#preview-note", Static).display = False
        self.loaded_path = path
        return True

    def show_note(self, text: str) -> None:
        self.query_one(Image).display = False
        note = self.query_one("#preview-note", Static)
        note.update(text)
        note.display = True
        self.loaded_path = None
