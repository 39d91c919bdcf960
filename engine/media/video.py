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


# Larger than 8K (33 megapixels) with room to spare; checked before a frame is decoded.
MAX_VIDEO_PIXELS = 80_000_000


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def check_video_stream(path: Path, container: av.container.InputContainer) -> av.VideoStream:
    """The video stream to read, once the container is known to be a real, sane video.

    FFmpeg opens a single picture as a one-frame "video" (image2, jpeg_pipe, ...): such a
    file is refused here with a name for what it is, as is a stream whose header claims
    a frame size no decoder should allocate.
    """
    fmt = container.format.name.split(",")[0]
    if fmt in ("image2", "image2pipe") or fmt.endswith("_pipe"):
        kind = fmt.removesuffix("_pipe").upper() if fmt.endswith("_pipe") else "still"
        raise BadInputError(
            f"{path} is a {kind} image, not a video",
            "give it to extract or convert with an image name (.jpg, .png)",
        )
    if not container.streams:
        raise BadInputError(
            f"{path} holds no streams at all: cut short, or not a video",
            "check the file is complete (an interrupted copy or download?)",
        )
    if not container.streams.video:
        raise BadInputError(
            f"{path} has no video stream", "give a video file, or extract its images first"
        )
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_VIDEO_PIXELS:
        raise BadInputError(
            f"{path} claims {width}x{height} frames, too large to be a real video",
            "check the file; re-encode it at a normal size if it plays elsewhere",
        )
    return stream


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_audio: bool


def sniff_video(path: Path) -> str | None:
    """The container name if FFmpeg reads `path` as a real video (e.g. "mp4"), else None."""
    try:
        with av.open(str(path)) as container:
            check_video_stream(path, container)
            return container.format.name.split(",")[0]
    except (av.error.FFmpegError, OSError, ValueError, BadInputError):
        return None


def probe_video(path: Path) -> VideoInfo:
    """Open the container and check it has a decodable video stream."""
    try:
        with av.open(str(path)) as container:
            stream = check_video_stream(path, container)
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
            if not ends_intact(container, stream):
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
            f"{path} is not a readable video ({ffmpeg_reason(exc)})",
            "check the file is complete; re-encode it if it plays elsewhere",
        ) from None


def ends_intact(container: av.container.InputContainer, stream: av.VideoStream) -> bool:
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


def ffmpeg_reason(exc: BaseException) -> str:
    # FFmpeg's own words, without the errno and the file name the caller already gives.
    reason = exc.strerror if isinstance(exc, av.error.FFmpegError) else None
    text = str(reason or exc).strip() or type(exc).__name__
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
            self.error = f"decoding stopped after frame {self.decoded} ({ffmpeg_reason(exc)})"
