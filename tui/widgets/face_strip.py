"""A row of aligned faces, shown as images (kitty, sixel or half-blocks, as the terminal can)."""

from __future__ import annotations

from pathlib import Path

from textual.containers import Horizontal
from textual_image.widget import Image


class FaceStrip(Horizontal):
    """Up to `limit` face images side by side; `show([])` empties it."""

    DEFAULT_CSS = """
    FaceStrip { height: 5; width: 1fr; }
    FaceStrip Image { width: 10; height: 5; margin-right: 1; }
    """

    def __init__(self, limit: int = 4, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.limit = limit
        self.paths: list[Path] = []

    async def show(self, paths: list[Path]) -> None:
        self.paths = list(paths[: self.limit])
        await self.remove_children()
        await self.mount_all(Image(str(p)) for p in self.paths)
