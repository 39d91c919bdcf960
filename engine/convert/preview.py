"""`--preview-frames N`: a few before/after frames in one PNG, for tuning settings fast.

Faces come from where the conversion would take them: on a video, the faceset
convert would use (`--faceset`, or the model's own when it covers the video),
else found on the fly.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import av
import cv2
import numpy as np

from engine.config import ConvertConfig
from engine.convert.faces import ManifestFaces
from engine.convert.smooth import Face
from engine.convert.swap import FaceSwapper
from engine.errors import BadInputError, CancelledError
from engine.events import CancelToken, Finished, Progress, Sink, Started
from engine.faces.finder import FaceFinder
from engine.media.images import read_image
from engine.media.video import upright_rgb
from engine.results import ConvertPreviewResult
from engine.workspace import atomic_write_bytes

_ROW_WIDTH = 960  # before + after side by side, scaled to this width


def _video_frames(path: Path, count: int, indexed: bool) -> list[tuple[int | None, np.ndarray]]:
    """`count` frames spread evenly through the video (one seek each), with their indices
    when `indexed` (None where one cannot be told)."""
    frames = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # A frame's index is its rank in presentation order, as decoding counts it.
            ranks = (
                sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
                if indexed
                else []
            )
            duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
            if not duration and container.duration:
                duration = container.duration / av.time_base
            for i in range(count):
                at = duration * (i + 0.5) / count
                container.seek(
                    int(at / stream.time_base) + (stream.start_time or 0),
                    stream=stream,
                    backward=True,
                )
                for frame in container.decode(stream):
                    if frame.time is None or frame.time >= at - 1e-3 or not duration:
                        frames.append((_rank(ranks, frame.pts), upright_rgb(frame)))
                        break
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadInputError(f"{path} is not a readable video ({exc})", "check the file") from None
    return frames


def _rank(ranks: list[int], pts: int | None) -> int | None:
    at = bisect.bisect_left(ranks, pts) if pts is not None else len(ranks)
    return at if at < len(ranks) and ranks[at] == pts else None


def _row(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    pair = np.concatenate([before, np.full((before.shape[0], 8, 3), 255, np.uint8), after], 1)
    scale = _ROW_WIDTH / pair.shape[1]
    size = (_ROW_WIDTH, max(1, round(pair.shape[0] * scale)))
    return cv2.resize(pair, size, interpolation=cv2.INTER_AREA)


def render_preview(
    config: ConvertConfig,
    swapper: FaceSwapper,
    finder: FaceFinder | None,
    sink: Sink,
    kind: str,
    cancel: CancelToken,
    manifest: ManifestFaces | None = None,
) -> ConvertPreviewResult:
    from engine.provenance import encode_image, mark_frame

    count = config.preview_frames
    faces_from = f"faceset {manifest.name}" if manifest else "found on the fly"
    detail = {
        "preview_frames": count,
        "output": str(config.output),
        "faces_from": faces_from,
        "mask": swapper.mask,
        **({"mask_model": swapper.mask_model} if swapper.mask_model else {}),
    }
    sink(Started(stage="convert", detail=detail))
    frames: list[tuple[int | None, np.ndarray]]
    if kind == "video":
        frames = _video_frames(config.input, count, indexed=manifest is not None)
    else:
        paths = (
            [config.input]
            if kind == "image"
            else sorted(
                p for p in config.input.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
            )
        )
        picks = np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int)
        frames = [(None, read_image(paths[i])) for i in sorted(set(picks.tolist()))]
    if not frames:
        raise BadInputError(f"no frames could be read from {config.input}", "check the input")
    assert finder is not None
    rows = []
    for done, (index, before) in enumerate(frames, 1):
        if cancel.cancelled:
            raise CancelledError("preview cancelled", "run it again")
        after = before.copy()
        if manifest is not None and index is not None:
            found = [face.landmarks for face in manifest.faces(index)]
        else:
            finder.reset()
            found = [face.landmarks for face in finder.find(after, False)]
        faces = [Face(landmarks, chain=i) for i, landmarks in enumerate(found)]
        swapper.chooser.reset()
        swapper.swap([(after, faces)])
        rows.append(_row(before, after))
        sink(Progress(stage="convert", done=done, total=len(frames), unit="frames"))
    sheet = mark_frame(np.concatenate(rows, axis=0))
    atomic_write_bytes(config.output, encode_image(sheet, ".png"))
    result = ConvertPreviewResult(
        frames=len(frames),
        faces_swapped=swapper.tally.faces_swapped,
        frames_without_face=swapper.tally.frames_without_face,
        output=str(config.output),
        mask=swapper.mask,
        mask_model=swapper.mask_model,
    )
    sink(Finished(stage="convert", result=result.model_dump(mode="json")))
    return result
