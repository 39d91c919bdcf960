"""Reading video frames with PyAV."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.errors import BadInputError

VIDEO_EXTS = frozenset(
    {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_audio: bool


def probe_video(path: Path) -> VideoInfo:
    """Open the container and check it has a decodable video stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInputError(
                    f"{path} has no video stream", "give a video file, or extract its images first"
                )
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            frames = stream.frames or round(duration * float(rate))
            # Decoding one frame proves the codec works and the data is there.
            first = next(container.decode(stream), None)
            if first is None:
                raise BadInputError(f"{path} contains no decodable frames", "check the file")
            if not _ends_intact(container, stream):
                raise BadInputError(
                    f"{path} is cut short: the end of its video data is missing",
                    "check the file is complete (an interrupted copy or download?)",
                )
            return VideoInfo(
                frames=int(frames),
                fps=float(rate),
                width=first.width,
                height=first.height,
                duration=duration,
                has_audio=bool(container.streams.audio),
            )
    except BadInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise BadInputError(
            f"{path} is not a readable video ({_short(exc)})",
            "check the file is complete; re-encode it if it plays elsewhere",
        ) from None


def _ends_intact(container: av.container.InputContainer, stream: av.VideoStream) -> bool:
    """Whether the last video packet the container's index promises is in the file.

    A file cut short whose index comes first (phones, web players) opens and
    decodes its first frames as if whole; only its end is missing.
    """
    if stream.duration is None:
        return True  # no index to check against; decoding will tell
    try:
        container.seek(
            (stream.start_time or 0) + stream.duration - 1,
            stream=stream,
            backward=True,
            any_frame=True,
        )
        packet = next(container.demux(stream), None)
    except av.error.FFmpegError:
        return True  # this container cannot seek; decoding will tell
    return packet is not None and packet.size > 0


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    # Phone videos store the picture sideways plus a display rotation (degrees
    # counter-clockwise); honour it so faces are upright.
    turns = round(getattr(frame, "rotation", 0) or 0) // 90 % 4
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
    return rgb


class VideoReader:
    """Iterates (index, RGB frame); a decode failure ends the iteration and is kept.

    `error` holds a one-line description of what stopped decoding early, if anything.
    """

    def __init__(self, path: Path, every: int = 1, skip: frozenset[int] = frozenset()) -> None:
        self.path = path
        self.every = every
        self.skip = skip
        self.error: str | None = None
        self.decoded = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(container.decode(stream)):
                    self.decoded = index + 1
                    if index % self.every or index in self.skip:
                        continue
                    yield index, upright_rgb(frame)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self.error = f"decoding stopped after frame {self.decoded} ({_short(exc)})"
