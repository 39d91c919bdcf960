"""Small real videos for tests, written and read with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

SAMPLE_CLIP = Path(__file__).resolve().parent.parent / "sample_data" / "clip_a.mp4"


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 25,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode RGB frames with libx264; `pts` (in `time_base`) makes the timing irregular."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if time_base is not None:
            stream.time_base = time_base
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def info(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = [f.pts for f in container.decode(video)]
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "frames": len(pts),
            "pts": pts,
            "time_base": video.time_base,
            "fps": float(video.average_rate or 0),
            "duration": float(container.duration or 0) / av.time_base,
            "audio": [a.codec_context.name for a in container.streams.audio],
            "size": (video.codec_context.width, video.codec_context.height),
            "metadata": dict(container.metadata),
        }


def reencode(src: Path, dst: Path, crf: int = 23) -> Path:
    """Re-encode the video once with libx264 at `crf` (as a platform upload would)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=vin.average_rate)
        stream.width, stream.height = vin.codec_context.width, vin.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in inp.decode(vin):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def short_clip(dst: Path, seconds: float, src: Path = SAMPLE_CLIP) -> Path:
    """The first `seconds` of `src`: video re-encoded, audio packets copied."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = "yuv420p"
        aout = out.add_stream_from_template(ain)
        for packet in inp.demux(vin, ain):
            if packet.pts is None:
                continue
            if packet.stream is ain:
                if float(packet.pts * packet.time_base) < seconds:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.time is None or frame.time >= seconds:
                    continue
                frame.pict_type = av.video.frame.PictureType.NONE
                for p in vout.encode(frame):
                    out.mux(p)
        for p in vout.encode():
            out.mux(p)
    return dst


def index_first(src: Path, dst: Path) -> Path:
    """Remux a video with its index (moov) before the data, as phones and web players write.

    Cut short, such a file still opens and decodes its first frames: the hard case.
    """
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)
    return dst


def marked_copy(src: Path, out: Path) -> Path:
    """The input only watermarked and re-encoded as convert does: what 'unchanged' can mean."""
    from engine.convert.video_io import VideoOutput, decode, open_input
    from engine.provenance import mark_frame

    video = open_input(src, None, None)
    output = VideoOutput(out, "mp4", video)
    for frame in decode(video):
        output.write(mark_frame(frame.rgb), frame.pts)
    output.close()
    return out
