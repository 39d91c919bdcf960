"""Video in and out for convert: frames with their timestamps, audio copied as is.

Every frame keeps its own presentation time, so variable-frame-rate input
keeps its timing; the audio packets are remuxed untouched, interleaved with
the video as it is written. Without --start nothing is cut: audio before the
first video frame stays, and so does the video's offset after the audio.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine import __version__
from engine.errors import BadInputError
from engine.media.video import check_video_stream, ends_intact, ffmpeg_reason, upright_rgb

# Container format by output suffix (the temporary name has none PyAV could go by).
FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}
_WRITE_AHEAD = 8  # frames queued for watermarking and encoding
_CRF = "18"  # visually lossless for the face; the watermark is made to survive far worse
# Stream tags that would be false on the output: the rotation is applied to the pixels
# already, the video is re-encoded, and Matroska's statistics describe the old stream.
_STALE_TAGS = {"rotate", "duration", "bps", "number_of_frames", "number_of_bytes"}


@dataclass
class DecodedFrame:
    index: int  # position in the converted range, from 0
    pts: int  # in the input video stream's time base
    rgb: np.ndarray


@dataclass
class InputVideo:
    path: Path
    time_base: Fraction
    rate: Fraction
    start_pts: int  # the first converted frame's pts
    end_pts: int | None
    shift_pts: int  # taken off every output time: the trim point with --start, else 0
    trimmed: bool  # --start given: audio before it is cut too
    frames: int  # expected frames in the converted range (an estimate for VFR)
    width: int
    height: int
    undecodable: int = 0  # frames whose packets failed to decode, skipped

    @property
    def start_seconds(self) -> float:
        return float(self.start_pts * self.time_base)

    @property
    def shift_seconds(self) -> Fraction:
        return self.shift_pts * self.time_base


def open_input(path: Path, start: float | None, end: float | None) -> InputVideo:
    """Probe `path` for the converted range [start, end) seconds."""
    try:
        with av.open(str(path)) as container:
            stream = check_video_stream(path, container)
            time_base = stream.time_base or Fraction(1, 90000)
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            first = next(container.decode(stream), None)
            # Read while the container is open: PyAV's stream fields dangle after it closes.
            declared, stream_duration = stream.frames or 0, stream.duration
            upright = upright_rgb(first) if first is not None else None
            # A cut-short file whose index comes first decodes its first frames as if whole,
            # and would be converted into a shorter output without a word.
            if first is not None and not ends_intact(container, stream):
                raise BadInputError(
                    f"{path} is cut short: the end of its video data is missing",
                    "check the file is complete (an interrupted copy or download?)",
                )
    except BadInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadInputError(
            f"{path} is not a readable video ({ffmpeg_reason(exc)})",
            "check the file plays; re-encode it if it does",
        ) from None
    if first is None:
        raise BadInputError(f"{path} contains no decodable frames", "check the file")
    stream_start = first.pts or 0
    start_pts = stream_start + (round(start / time_base) if start else 0)
    # Untrimmed, the output keeps the input's times, so a video stream that starts after
    # its audio still does; only a negative start is moved up to 0, audio alongside.
    shift_pts = start_pts if start else min(stream_start, 0)
    end_pts = stream_start + round(end / time_base) if end else None
    if end_pts is not None and end_pts <= start_pts:
        raise BadInputError(f"--end {end} is not after --start {start or 0}", "swap them")
    assert upright is not None
    duration = float(stream_duration * time_base) if stream_duration else 0.0
    total = declared or round(duration * float(rate))
    if start or end:
        span = min(end or duration, duration) - (start or 0.0)
        total = max(0, round(span * float(rate)))
    return InputVideo(
        path=path,
        time_base=time_base,
        rate=rate,
        start_pts=start_pts,
        end_pts=end_pts,
        shift_pts=shift_pts,
        trimmed=bool(start),
        frames=total,
        width=upright.shape[1],
        height=upright.shape[0],
    )


def decode(video: InputVideo) -> Iterator[DecodedFrame]:
    """Frames of the range in order; packets that fail to decode are skipped and counted."""
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if video.start_pts > 0:
            container.seek(video.start_pts, stream=stream, backward=True)
        index = 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                video.undecodable += 1
                continue
            for frame in frames:
                if frame.pts is None or frame.pts < video.start_pts:
                    continue
                if video.end_pts is not None and frame.pts >= video.end_pts:
                    return
                yield DecodedFrame(index, frame.pts, upright_rgb(frame))
                index += 1


def stream_tags(tags: dict[str, str], drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """An input stream's tags (language, title, handler) that still hold for the output."""
    stale = _STALE_TAGS | drop
    return {
        k: v for k, v in tags.items() if k.lower() not in stale and not k.startswith("_STATISTICS")
    }


def video_metadata() -> dict[str, str]:
    from engine.provenance import VIDEO_METADATA

    return {**VIDEO_METADATA, "encoder": f"swapdeck {__version__}"}


class VideoOutput:
    """Writes frames (with their input pts) and the input's audio into `path`."""

    def __init__(self, path: Path, fmt: str, video: InputVideo) -> None:
        self.video = video
        self._out = av.open(str(path), "w", format=fmt)
        self._out.metadata.update(video_metadata())
        stream = self._out.add_stream("libx264", rate=video.rate)
        stream.width, stream.height = video.width, video.height
        # H.264 4:2:0 needs even sides; 4:4:4 keeps odd-sized video at its size.
        odd = video.width % 2 or video.height % 2
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        # Encode in the input's own time base: at 1/fps, variable-rate frames would collide.
        stream.time_base = video.time_base
        stream.codec_context.time_base = video.time_base
        stream.options = {"crf": _CRF, "preset": "fast"}
        self._stream = stream
        self._audio_in = av.open(str(video.path))
        if self._audio_in.streams.video:
            tags = self._audio_in.streams.video[0].metadata
            stream.metadata.update(stream_tags(tags, drop=frozenset({"encoder"})))
        self._audio_map = {}
        for audio in self._audio_in.streams.audio:
            try:
                self._audio_map[audio.index] = self._out.add_stream_from_template(audio)
            except (ValueError, av.error.FFmpegError):
                continue  # a codec this container cannot hold: that track is dropped
            # The template carries the codec only: language and title are copied here.
            self._audio_map[audio.index].metadata.update(stream_tags(audio.metadata))
        self._audio_packets = self._audio_iter()
        self._pending_audio: av.Packet | None = None
        self.audio_streams = len(self._audio_map)

    def _audio_iter(self) -> Iterator[av.Packet]:
        streams = [self._audio_in.streams[i] for i in self._audio_map]
        if not streams:
            return
        video = self.video
        start = video.start_seconds
        end = float(video.end_pts * video.time_base) if video.end_pts is not None else None
        if video.trimmed and start > 0:
            self._audio_in.seek(int(start * av.time_base), backward=True)
        for packet in self._audio_in.demux(streams):
            if packet.pts is None or packet.size == 0:
                continue
            when = float(packet.pts * packet.time_base)
            # Before the start only when trimming: audio ahead of the first video frame
            # (and AAC's priming packet below zero) belongs to an untrimmed output.
            if (video.trimmed and when < start - 1e-6) or (end is not None and when >= end):
                continue
            shift = round(video.shift_seconds / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._audio_map[packet.stream.index]
            yield packet

    def _mux_audio_until(self, seconds: float | None) -> None:
        while True:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                return
            if seconds is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending_audio = packet
                return
            self._out.mux(packet)

    def write(self, rgb: np.ndarray, pts: int) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts - self.video.shift_pts
        frame.time_base = self.video.time_base
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self._mux_audio_until(float(frame.pts * self.video.time_base))

    def close(self) -> None:
        for packet in self._stream.encode():
            self._out.mux(packet)
        self._mux_audio_until(None)
        self._out.close()
        self._audio_in.close()

    def abort(self) -> None:
        for container in (self._out, self._audio_in):
            with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                container.close()


class MarkedWriter:
    """Watermarks frames in a small pool and encodes them into `output`, in order, on a
    thread of its own (convert and reenact write their videos through it).

    `put` raises the encoder's error, if any; `finish` waits for the last frame;
    `abort` gives up on what is queued.
    """

    def __init__(self, output: VideoOutput) -> None:
        from engine.provenance import mark_frame

        self._mark = mark_frame
        self._output = output
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="watermark")
        self._queue: queue.Queue[tuple[Future[np.ndarray], int] | None] = queue.Queue(
            maxsize=_WRITE_AHEAD
        )
        self.error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                future, pts = item
                self._output.write(future.result(), pts)
                self.written += 1
        except BaseException as exc:  # raised again in the main thread
            self.error = exc
            while self._queue.get() is not None:  # let the producer finish
                pass

    def put(self, rgb: np.ndarray, pts: int) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put((self._pool.submit(self._mark, rgb), pts))

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._pool.shutdown()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._pool.shutdown(cancel_futures=True)
