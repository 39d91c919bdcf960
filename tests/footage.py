"""Harder clips built in code from the real footage in ../shared/footage.

The clips there show one person each. Users bring two people in one frame,
hard cuts, faces partly covered and audio that starts before the video; these
recipes build exactly that with PyAV, so tests and bench/realworld.py measure
real faces without new files in the repository. The footage is MIT licensed
(LivePortrait's example assets, see ../shared/footage/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

# Beside the checkout, as CI lays it out; SWAPDECK_FOOTAGE points elsewhere (a worktree).
FOOTAGE = Path(
    os.environ.get("SWAPDECK_FOOTAGE") or Path(__file__).resolve().parents[2] / "shared" / "footage"
)
FPS = 30


def footage(name: str) -> Path:
    """A file of ../shared/footage; the test is skipped when that folder is not there."""
    path = FOOTAGE / name
    if not path.exists():
        pytest.skip(f"real footage {path} is not there (it lies beside the checkout)")
    return path


def read_frames(name: str, start: int = 0, count: int | None = None) -> list[np.ndarray]:
    """RGB frames [start, start + count) of a footage clip."""
    frames: list[np.ndarray] = []
    with av.open(str(footage(name))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if count is not None and len(frames) >= count:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height, then centre-crop (no bars, no distortion)."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    resized = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    y0 = (resized.shape[0] - height) // 2
    x0 = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def side_by_side(
    left: list[np.ndarray], right: list[np.ndarray], height: int = 360, width: int = 640
) -> list[np.ndarray]:
    """Two people in one frame: each clip fills one half (as long as the shorter one)."""
    half = width // 2
    return [
        np.concatenate([fit(a, half, height), fit(b, width - half, height)], axis=1)
        for a, b in zip(left, right, strict=False)
    ]


def small_in_frame(
    frames: list[np.ndarray], face_scale: float, height: int = 360, width: int = 640
) -> list[np.ndarray]:
    """The clip shrunk by `face_scale` and placed off-centre on a plain backdrop."""
    h, w = frames[0].shape[:2]
    size = (round(w * face_scale), round(h * face_scale))
    out = []
    for frame in frames:
        canvas = np.full((height, width, 3), 96, np.uint8)
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        y0, x0 = (height - size[1]) // 2, width // 5
        canvas[y0 : y0 + size[1], x0 : x0 + size[0]] = small[: height - y0, : width - x0]
        out.append(canvas)
    return out


def occlude(frames: list[np.ndarray], box: tuple[float, float, float, float]) -> list[np.ndarray]:
    """A dark microphone-like bar moving up over the lower face: box (x0, y0, x1, y1) in 0..1."""
    out = []
    for i, frame in enumerate(frames):
        frame = frame.copy()
        h, w = frame.shape[:2]
        t = i / max(1, len(frames) - 1)
        x0, y0, x1, y1 = box
        lift = (1 - t) * (y1 - y0) * 0.5
        top = round((y0 + lift) * h)
        cv2.rectangle(frame, (round(x0 * w), top), (round(x1 * w), h), (30, 30, 34), -1)
        cv2.circle(
            frame, (round((x0 + x1) / 2 * w), top), round((x1 - x0) * w * 0.9), (60, 60, 64), -1
        )
        out.append(frame)
    return out


@dataclass
class Shot:
    """One shot of a built clip: which frames of the output, and what they show."""

    first: int
    frames: int
    what: str
    people: int = 1
    meta: dict[str, object] = field(default_factory=dict)


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    rate: int = FPS,
    audio_from: str | None = None,
    audio_start: float = 0.0,
    video_start: float = 0.0,
    language: str | None = "eng",
) -> Path:
    """Encode frames (H.264) and, optionally, a footage clip's audio re-encoded as AAC.

    `video_start` > `audio_start` makes the audio begin before the first video frame,
    as in footage cut from a longer recording; the audio stream gets a language tag.
    """
    frames = list(frames)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, rate * 512)
        stream.options = {"crf": "20", "preset": "veryfast"}
        audio_out = None
        if audio_from is not None:
            audio_out = out.add_stream("aac", rate=44100)
            audio_out.layout = "stereo"
            if language:
                audio_out.metadata["language"] = language
        offset = round(video_start * rate)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = (offset + i) * 512
            frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_out is not None:
            assert audio_from is not None
            seconds = video_start + len(frames) / rate - audio_start
            _copy_audio(footage(audio_from), out, audio_out, audio_start, seconds)
    return path


def _copy_audio(
    src: Path,
    out: av.container.OutputContainer,
    stream: av.AudioStream,
    start: float,
    seconds: float,
) -> None:
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
    wanted = round(seconds * 44100)
    written = 0
    first = round(start * 44100)
    with av.open(str(src)) as inp:
        for frame in inp.decode(audio=0):
            for chunk in resampler.resample(frame):
                if written >= wanted:
                    break
                take = min(chunk.samples, wanted - written)
                data = chunk.to_ndarray()[:, :take]
                piece = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data), format="fltp", layout="stereo"
                )
                piece.sample_rate = 44100
                piece.pts = first + written
                piece.time_base = Fraction(1, 44100)
                for packet in stream.encode(piece):
                    out.mux(packet)
                written += take
    for packet in stream.encode():
        out.mux(packet)


def audio_seconds(path: Path) -> float:
    """Duration of the first audio stream, from its packets (0 when there is none)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        stream = container.streams.audio[0]
        first = last = None
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
        return 0.0 if first is None else last - first


def stream_starts(path: Path) -> dict[str, float]:
    """Start time in seconds of the first video and audio stream (as PyAV reports them)."""
    starts: dict[str, float] = {}
    with av.open(str(path)) as container:
        for kind, streams in (
            ("video", container.streams.video),
            ("audio", container.streams.audio),
        ):
            if streams and streams[0].start_time is not None:
                starts[kind] = float(streams[0].start_time * streams[0].time_base)
    return starts


def two_people(path: Path, frames: int = 45) -> tuple[Path, list[Shot]]:
    """Woman (talk_d3) left, man with glasses (talk_d9) right, in one 640x360 frame."""
    left = read_frames("talk_d3.mp4", 30, frames)
    right = read_frames("talk_d9.mp4", 30, frames)
    write_video(path, side_by_side(left, right), audio_from="talk_d3.mp4")
    return path, [Shot(0, frames, "two people side by side", people=2)]


def cuts(path: Path, frames_per_shot: int = 20) -> tuple[Path, list[Shot]]:
    """Hard cuts: d3 -> d9 -> d6 -> two people, each shot `frames_per_shot` frames."""
    n = frames_per_shot
    shots = [
        fit_all(read_frames("talk_d3.mp4", 60, n)),
        fit_all(read_frames("talk_d9.mp4", 60, n)),
        fit_all(read_frames("talk_d6.mp4", 60, n)),
        side_by_side(read_frames("talk_d3.mp4", 200, n), read_frames("talk_d9.mp4", 200, n)),
    ]
    names = ["d3", "d9", "d6", "d3 + d9"]
    out = [frame for shot in shots for frame in shot]
    write_video(path, out, audio_from="talk_d9.mp4")
    return path, [
        Shot(i * n, n, f"shot {names[i]}", people=2 if i == 3 else 1) for i in range(len(shots))
    ]


def fit_all(frames: list[np.ndarray], width: int = 640, height: int = 360) -> list[np.ndarray]:
    return [fit(f, width, height) for f in frames]


def audio_lead(path: Path, lead: float = 0.85, frames: int = 45) -> tuple[Path, list[Shot]]:
    """talk_d3 whose video stream starts `lead` seconds after its audio."""
    write_video(
        path,
        fit_all(read_frames("talk_d3.mp4", 0, frames)),
        audio_from="talk_d3.mp4",
        video_start=lead,
    )
    return path, [Shot(0, frames, f"audio {lead} s ahead of the video", meta={"lead": lead})]


def closeup(frames: list[np.ndarray]) -> list[np.ndarray]:
    """talk_d3 framed tight around the face (brow to chin), as a close-up shot frames it."""
    return [
        cv2.resize(f[220:480, 160:420], (480, 480), interpolation=cv2.INTER_CUBIC) for f in frames
    ]


def turn(frame: np.ndarray, degrees: float) -> np.ndarray:
    """The picture turned about a vertical axis (a perspective warp): the head turns further."""
    h, w = frame.shape[:2]
    focal, t = 1.2 * w, np.radians(degrees)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = []
    for x, y in src:
        dx = x - w / 2
        k = focal / (focal + dx * np.sin(t))
        dst.append([w / 2 + dx * np.cos(t) * k, h / 2 + (y - h / 2) * k])
    matrix = cv2.getPerspectiveTransform(src, np.float32(dst))
    return cv2.warpPerspective(frame, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def hand(frames: list[np.ndarray], face: tuple[float, float, float]) -> list[np.ndarray]:
    """A skin-coloured hand that slides in from the right over mouth and nose, rests, leaves.

    `face` is (cx, cy, size) of the face in 0..1 of the frame width/height/width.
    """
    out = []
    n = len(frames)
    for i, frame in enumerate(frames):
        frame = frame.copy()
        h, w = frame.shape[:2]
        cx, cy, size = face[0] * w, face[1] * h, face[2] * w
        # In over the first third, resting in the middle third, out over the last.
        t = min(i / (n / 3), 1.0, max(0.0, (n - 1 - i) / (n / 3)))
        x = cx + size * (1.6 - 1.6 * t)
        palm = (round(x), round(cy + 0.15 * size))
        axes = (round(0.45 * size), round(0.38 * size))
        cv2.ellipse(frame, palm, axes, 0, 0, 360, (214, 160, 128), -1)
        for k in range(4):  # fingers pointing up-left, over the nose
            y0 = round(cy - 0.05 * size + k * 0.12 * size)
            cv2.line(
                frame,
                (palm[0], y0),
                (round(palm[0] - 0.6 * size), y0 - round(0.1 * size)),
                (204, 150, 120),
                max(3, round(0.1 * size)),
            )
        out.append(frame)
    return out
