"""Turning SOURCE arguments (files, folders, videos) into a checked list of inputs."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from PIL import UnidentifiedImageError

from engine.errors import BadInputError
from engine.media.images import is_image_path, open_image
from engine.media.paths import check_path, link_problem
from engine.media.video import VideoInfo, is_video_path, probe_video, sniff_video


@dataclass(frozen=True)
class SourceItem:
    path: Path
    kind: str  # "image" | "video"
    explicit: bool  # named on the command line, not found inside a folder
    video: VideoInfo | None = None

    @property
    def frames(self) -> int:
        return self.video.frames if self.video else 1


def _natural_key(path: Path) -> list[object]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _check_image_header(path: Path) -> None:
    try:
        with open_image(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        video = sniff_video(path) if isinstance(exc, UnidentifiedImageError) else None
        if video:
            raise BadInputError(
                f"{path} is a video ({video}), not an image", "rename it with a video suffix"
            ) from None
        kind = "not an image" if isinstance(exc, UnidentifiedImageError) else "damaged"
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise BadInputError(
            f"{path} is {kind} ({why})",
            "remove it from the sources or replace it with a good copy",
        ) from None


def _folder_items(folder: Path, skipped: list[str] | None) -> list[SourceItem]:
    try:
        entries = sorted(folder.iterdir(), key=_natural_key)
    except OSError as exc:
        raise BadInputError(f"cannot list {folder} ({exc.strerror})", "check permissions") from None
    items = []
    for entry in entries:
        media = is_image_path(entry) or is_video_path(entry)
        try:
            mode = entry.stat().st_mode
        except OSError:  # a dangling or looping link, or no permission: said, never followed
            problem = link_problem(entry) or (f"cannot read {entry}" if media else None)
            if problem and skipped is not None:
                skipped.append(problem)
            continue
        if not stat.S_ISREG(mode):  # sub-folders are not searched; pipes would block
            if media and not stat.S_ISDIR(mode) and skipped is not None:
                skipped.append(f"{entry} is not a regular file")
            continue
        if is_image_path(entry):
            items.append(SourceItem(entry, "image", explicit=False))
        elif is_video_path(entry):
            items.append(SourceItem(entry, "video", explicit=False, video=probe_video(entry)))
    return items


def expand_sources(paths: list[Path], skipped: list[str] | None = None) -> list[SourceItem]:
    """Check every SOURCE and list what will be read, in order.

    Raises a SwapdeckError for a missing path, an empty folder, an unreadable
    video or a named file that is not an image. Entries of a folder that cannot
    be read (dangling links, link loops, pipes) are left out, each with a line
    appended to `skipped`.
    """
    items: list[SourceItem] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if check_path(path, "image or video"):
            found = _folder_items(path, skipped)
            if not found:
                raise BadInputError(
                    f"{path} holds no images or videos",
                    "point at a folder of .jpg/.png images or at video files",
                )
            items.extend(found)
        elif is_video_path(path):
            items.append(SourceItem(path, "video", explicit=True, video=probe_video(path)))
        elif is_image_path(path):
            _check_image_header(path)
            items.append(SourceItem(path, "image", explicit=True))
        else:
            raise BadInputError(
                f"{path} is neither an image nor a video this tool reads",
                "give .jpg/.png/... images, folders of them, or .mp4/.mov/... videos",
            )
    # The same file named twice (or inside a named folder too) is read once.
    seen: set[Path] = set()
    unique = []
    for item in items:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
