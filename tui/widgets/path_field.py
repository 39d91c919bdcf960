"""Pick a path: browse a directory tree or type it; files, folders and videos alike."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DirectoryTree, Input


def is_media(path: Path) -> bool:
    """Images and videos by name: what extract and convert take besides folders."""
    # Imported here: engine.media.video pulls in PyAV, which the first screen does not need.
    from engine.media.images import is_image_path
    from engine.media.video import is_video_path

    return is_image_path(path) or is_video_path(path)


class MediaTree(DirectoryTree):
    """A directory tree showing folders, images and videos; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or is_media(p))]


class PathField(Vertical):
    """A MediaTree above an Input: the tree's highlighted entry fills the input.

    `value` is the path in the input (typed or browsed). Enter in the input
    on a folder opens that folder in the tree, and posts `Submitted`.
    """

    DEFAULT_CSS = """
    PathField { height: 1fr; }
    PathField MediaTree { height: 1fr; }
    PathField Input { height: 1; }
    """

    class Submitted(Message):
        def __init__(self, field: PathField, path: Path) -> None:
            super().__init__()
            self.field = field
            self.path = path

        @property
        def control(self) -> PathField:
            return self.field

    def __init__(
        self,
        root: Path = Path("."),
        placeholder: str = "path: a file, a folder or a video",
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.root = root
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        yield MediaTree(self.root)
        yield Input(placeholder=self.placeholder, compact=True)

    @property
    def value(self) -> Path | None:
        text = self.query_one(Input).value.strip()
        return Path(text).expanduser() if text else None

    @value.setter
    def value(self, path: Path | None) -> None:
        self.query_one(Input).value = "" if path is None else str(path)

    @on(DirectoryTree.NodeHighlighted)
    def _follow_tree(self, event: DirectoryTree.NodeHighlighted) -> None:
        event.stop()
        if event.node.data is not None:
            self.value = event.node.data.path

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = self.value
        if path is None:
            return
        if path.is_dir():
            self.query_one(MediaTree).path = path
        self.post_message(self.Submitted(self, path))
