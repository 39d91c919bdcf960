"""Scoring a swap: numbers, not opinions.

Given footage and its converted output (same frames, same size: convert keeps
every frame and every pixel outside the face), score measures per face found
in the original:

- identity: is the swapped face's dlib embedding closer to the target
  faceset's centroid than to the source's (ID retrieval), and how close;
- expression and pose kept: landmark distance between original and swapped
  face (NME, normalised by the outer-eye distance) and head-pose differences;
- stability: landmark acceleration from frame to frame along each face track,
  original against swapped (a swap that flickers shows up as a ratio above 1);

and, once per model, reconstruction SSIM (A→A, B→B) on the faces training held out.
A model that swaps one way only (a per-target network such as fast-swap) rebuilds
no faces, so it has no reconstruction figures; without a faceset of A it has no
source identity either, and its faces are measured against the target alone.

Landmarks on both frames are fitted from the same box (the original face's):
the swapped face sits where the original was, a detector may miss an imperfect
swap, and fitting both the same way means identical frames measure exactly 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from engine.errors import BadInputError, CancelledError
from engine.events import CancelToken, Finished, Progress, Sink, Started, Warning, null_sink
from engine.faces.finder import FaceFinder
from engine.faces.identity import Embedder
from engine.faces.pose import head_pose
from engine.faces.types import FoundFace
from engine.faceset import Faceset
from engine.media.images import read_image
from engine.media.prefetch import prefetch
from engine.media.sources import expand_sources
from engine.media.video import VideoReader
from engine.results import ScoreResult
from engine.train.data import load_faces
from engine.train.inference import TrainedModel, load_trained
from engine.workspace import Workspace

DIRECTIONS = ("a-to-b", "b-to-a")
# The iBUG outer eye corners: the usual NME normaliser (inter-ocular distance).
_EYE_OUTER = (36, 45)
_SSIM_WINDOW = 11
_PROGRESS_EVERY_S = 0.25
_SAME_INPUT_HINT = "SWAPPED must be the converted output of ORIGINAL: same frames, same size"

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


def pairs_from_paths(paths: Sequence[Path]) -> list[tuple[Path, Path]]:
    """ORIGINAL SWAPPED [ORIGINAL SWAPPED ...] as pairs; an odd count is bad input."""
    if not paths or len(paths) % 2:
        raise BadInputError(
            f"score needs ORIGINAL SWAPPED pairs, got {len(paths)} path(s)",
            "give an even number of paths: each original followed by its swapped output",
        )
    return [(Path(paths[i]), Path(paths[i + 1])) for i in range(0, len(paths), 2)]


# ---- reading the two inputs in lockstep ------------------------------------------------------


@dataclass
class _Footage:
    """One input: a video, or images (a folder of them, or one) read in name order."""

    path: Path
    frames: int
    images: list[Path] | None = None  # None for a video

    @property
    def is_video(self) -> bool:
        return self.images is None

    def read(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.images is not None:
            for index, image in enumerate(self.images):
                yield index, read_image(image)
            return
        reader = VideoReader(self.path)
        yield from reader
        if reader.error:
            raise BadInputError(f"{self.path}: {reader.error}", "check the file is complete")


def _count_video_frames(path: Path) -> int:
    """Exact frame count by demuxing (no decoding): container headers only estimate it."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadInputError(f"{path} is not a readable video ({exc})", "check the file") from None


def _open_footage(path: Path) -> _Footage:
    items = expand_sources([path])  # missing, unreadable or unsupported paths are refused here
    if len(items) == 1 and items[0].kind == "video" and items[0].explicit:
        return _Footage(path, _count_video_frames(path))
    if any(item.kind == "video" for item in items):
        raise BadInputError(
            f"{path} holds videos", "give each video itself, or a folder of frame images"
        )
    return _Footage(path, len(items), [item.path for item in items])


def _open_pair(original: Path, swapped: Path) -> tuple[_Footage, _Footage]:
    first, second = _open_footage(original), _open_footage(swapped)
    if first.frames != second.frames:
        raise BadInputError(
            f"{original} has {first.frames} frames but {swapped} has {second.frames}",
            _SAME_INPUT_HINT,
        )
    return first, second


def _lockstep(
    original: _Footage, swapped: _Footage
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(index, original frame, swapped frame), refusing frames of different sizes."""
    pairs = zip(original.read(), swapped.read(), strict=False)
    count = 0
    for (index, first), (_, second) in pairs:
        if first.shape != second.shape:
            raise BadInputError(
                f"frame {index} of {swapped.path} is {second.shape[1]}x{second.shape[0]} but "
                f"{original.path} is {first.shape[1]}x{first.shape[0]}",
                _SAME_INPUT_HINT,
            )
        count += 1
        yield index, first, second
    if count != original.frames:  # the demuxed count promised more than decoded
        raise BadInputError(
            f"only {count} of {original.frames} frames of {original.path} and {swapped.path} "
            "could be read together",
            _SAME_INPUT_HINT,
        )


# ---- per-face measures -----------------------------------------------------------------------


def _eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[_EYE_OUTER[1]] - landmarks[_EYE_OUTER[0]]))


def _angle_diff(a: float, b: float) -> float:
    """|a - b| in degrees, the short way round."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _acceleration(triple: Triple) -> float:
    """Mean over the 68 points of |l[t+1] - 2 l[t] + l[t-1]|, in pixels."""
    before, now, after = triple
    return float(np.linalg.norm(after - 2.0 * now + before, axis=1).mean())


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or not bottom:
        return None
    return top / bottom


def _rounded(value: Any) -> Any:
    """JSON-ready: floats rounded, nothing that is not finite."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, 6) if np.isfinite(value) else None
    return value


@dataclass
class _Sample:
    """One face in one frame: where its landmarks are in both frames."""

    frame: int
    original: np.ndarray  # (68, 2)
    swapped: np.ndarray
    eye_distance: float


@dataclass
class _Tally:
    """Everything measured in one ORIGINAL / SWAPPED pair."""

    frames: int = 0
    faces: int = 0
    skipped: int = 0
    nme: list[float] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    pitch: list[float] = field(default_factory=list)
    roll: list[float] = field(default_factory=list)
    closer_to_target: list[bool] = field(default_factory=list)
    dist_target: list[float] = field(default_factory=list)
    dist_source: list[float] = field(default_factory=list)
    tracks: dict[int, list[_Sample]] = field(default_factory=dict)

    def add_geometry(self, sample: _Sample, track: int | None) -> None:
        self.faces += 1
        offsets = np.linalg.norm(sample.swapped - sample.original, axis=1)
        self.nme.append(float(offsets.mean()) / sample.eye_distance)
        before, after = head_pose(sample.original), head_pose(sample.swapped)
        for values, a, b in zip((self.yaw, self.pitch, self.roll), before, after, strict=True):
            values.append(_angle_diff(a, b))
        if track is not None:
            self.tracks.setdefault(track, []).append(sample)

    def add_identity(self, to_target: float, to_source: float | None) -> None:
        self.dist_target.append(to_target)
        if to_source is not None:  # retrieval needs both identities
            self.closer_to_target.append(to_target < to_source)
            self.dist_source.append(to_source)

    def _stability(self) -> dict[str, float | None]:
        px: dict[str, list[float]] = {"original": [], "swapped": []}
        norm: dict[str, list[float]] = {"original": [], "swapped": []}
        for samples in self.tracks.values():
            for before, now, after in zip(samples, samples[1:], samples[2:], strict=False):
                if after.frame - before.frame != 2:  # only consecutive frames
                    continue
                for side in ("original", "swapped"):
                    value = _acceleration(
                        (getattr(before, side), getattr(now, side), getattr(after, side))
                    )
                    px[side].append(value)
                    norm[side].append(value / now.eye_distance)
        original, swapped = _mean(norm["original"]), _mean(norm["swapped"])
        return {
            "original": original,
            "swapped": swapped,
            "ratio": _ratio(swapped, original),
            "original_px": _mean(px["original"]),
            "swapped_px": _mean(px["swapped"]),
        }

    def metrics(self) -> dict[str, dict[str, float | None]]:
        retrieval = _mean([float(c) for c in self.closer_to_target])
        return {
            "identity": {
                "retrieval": retrieval,
                "dist_target": _mean(self.dist_target),
                "dist_source": _mean(self.dist_source),
            },
            "expression": {
                "nme": _mean(self.nme),
                "yaw": _mean(self.yaw),
                "pitch": _mean(self.pitch),
                "roll": _mean(self.roll),
            },
            "stability": self._stability(),
        }


def _average(videos: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each metric's mean over the pairs that measured it (every pair counts the same)."""
    out: dict[str, dict[str, float | None]] = {}
    for group in ("identity", "expression", "stability"):
        keys = videos[0][group].keys()
        out[group] = {
            key: _mean([v[group][key] for v in videos if v[group][key] is not None]) for key in keys
        }
    return out


# ---- identity centroids and reconstruction ---------------------------------------------------


def _centroid(workspace: Workspace, name: str) -> np.ndarray | None:
    with Faceset.open(workspace.existing_faceset_dir(name)) as faceset:
        embeddings = [r.embedding for r in faceset.faces() if r.embedding is not None]
    return np.mean(embeddings, axis=0).astype(np.float32) if embeddings else None


def _masked_ssim(pred: np.ndarray, target: torch.Tensor, mask: torch.Tensor) -> float:
    """kornia's SSIM map averaged over the face mask: the models learn only the masked face."""
    import kornia

    x = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 255
    y = target.float() / 255
    weight = mask.float()[:, None] / 255
    ssim = kornia.metrics.ssim(x, y, _SSIM_WINDOW).mean(dim=1, keepdim=True)
    return float((ssim * weight).sum() / weight.sum().clamp_min(1e-6))


def _reconstruction(workspace: Workspace, trained: TrainedModel) -> dict[str, Any]:
    out: dict[str, Any] = {"ssim_a": None, "faces_a": 0, "ssim_b": None, "faces_b": 0}
    if not trained.both_ways:  # it cannot redraw a face as its own person
        return out
    settings = trained.settings
    for side, name in (("a", settings.faceset_a), ("b", settings.faceset_b)):
        # load_faces holds out the same faces training did, so this is unseen data.
        data = load_faces(workspace, name, trained.size)
        faces = data.held_faces.permute(0, 2, 3, 1).numpy()
        rebuilt, _ = trained.swap(faces, side)
        out[f"ssim_{side}"] = _masked_ssim(rebuilt, data.held_faces, data.held_masks[:, 0])
        out[f"faces_{side}"] = len(faces)
    return out


# ---- the run ---------------------------------------------------------------------------------


class _Scorer:
    def __init__(
        self,
        finder: FaceFinder,
        target: np.ndarray | None,
        source: np.ndarray | None,
        total: int,
        sink: Sink,
        cancel: CancelToken,
    ) -> None:
        self.finder = finder
        self.embedder = Embedder()
        self.target = target
        self.source = source
        self.total = total
        self.sink = sink
        self.cancel = cancel
        self.done = 0
        self.faces = 0
        self._last_progress = 0.0

    def score_pair(self, original: _Footage, swapped: _Footage) -> dict[str, Any]:
        tally = _Tally()
        # Faces are found in the original; its swapped frame rides along with it.
        frames = self.finder.stream(prefetch(_lockstep(original, swapped)), original.is_video)
        for found in frames:
            if self.cancel.cancelled:
                raise CancelledError(
                    f"score cancelled after {self.done} frames", "run it again to get the scores"
                )
            assert found.image is not None
            self._measure_frame(tally, found.index, found.image, found.payload, found.faces)
            self.done += 1
            self._progress()
        self._progress(force=True)
        self._warn_about(tally, original, swapped)
        return {
            "original": str(original.path),
            "swapped": str(swapped.path),
            "frames": tally.frames,
            "faces": tally.faces,
            "skipped": tally.skipped,
            **tally.metrics(),
        }

    def _measure_frame(
        self,
        tally: _Tally,
        index: int,
        image: np.ndarray,
        swapped: np.ndarray,
        faces: list[FoundFace],
    ) -> None:
        tally.frames += 1
        boxes = [face.box for face in faces]
        backend = self.finder.backend
        fitted = zip(
            faces, backend.landmarks(image, boxes), backend.landmarks(swapped, boxes), strict=True
        )
        for face, before, after in fitted:
            eyes = _eye_distance(before)
            if eyes < 1.0:  # degenerate fit: nothing to normalise by
                tally.skipped += 1
                continue
            track = face.track.id if face.track is not None else None
            tally.add_geometry(_Sample(index, before, after, eyes), track)
            self.faces += 1
            if self.target is None:
                continue
            try:
                embedding = self.embedder.embed(swapped, after)
            except (RuntimeError, ValueError):  # dlib refuses chips it cannot cut
                tally.skipped += 1
                continue
            tally.add_identity(
                float(np.linalg.norm(embedding - self.target)),
                None if self.source is None else float(np.linalg.norm(embedding - self.source)),
            )

    def _warn_about(self, tally: _Tally, original: _Footage, swapped: _Footage) -> None:
        if tally.faces == 0:
            self.sink(
                Warning(
                    message=f"no faces found in {original.path}",
                    hint="its figures are null; are its faces smaller than the minimum face size?",
                )
            )
        if tally.skipped:
            self.sink(
                Warning(
                    message=f"{tally.skipped} faces in {swapped.path} could not be measured",
                    hint="they are left out of the averages",
                )
            )

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < _PROGRESS_EVERY_S:
            return
        self._last_progress = now
        self.sink(
            Progress(
                stage="score",
                done=self.done,
                total=self.total,
                unit="frames",
                counts={"faces": self.faces},
            )
        )


def score(
    workspace: Workspace,
    model: str,
    pairs: Sequence[tuple[Path, Path]],
    direction: str = "a-to-b",
    backend: str = "auto",
    min_face: int = 80,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> ScoreResult:
    """Score swapped footage against its original, and model `model` on held-out faces.

    `pairs` are (ORIGINAL, SWAPPED) paths: videos, image folders or images, each
    SWAPPED the converted output of its ORIGINAL. `direction` says which faceset
    is the target identity (B for a-to-b). Emits Started, Progress, Warning and
    Finished events; checks `cancel` between frames. Returns the Finished
    result: per pair ("videos"), their "average", and "reconstruction"; every
    figure a plain number, or None where there was nothing to measure.
    """
    cancel = cancel or CancelToken()
    if direction not in DIRECTIONS:
        raise BadInputError(f"unknown direction {direction!r}", "use a-to-b or b-to-a")
    if not pairs:
        raise BadInputError("nothing to score", "give ORIGINAL SWAPPED paths")
    trained = load_trained(workspace, model)
    trained.check_direction(direction)
    footage = [_open_pair(Path(o), Path(s)) for o, s in pairs]
    settings = trained.settings
    # A per-target network may name no faceset of A (it learnt from anyone's faces).
    source: str | None = getattr(settings, "faceset_a", None)
    target: str = settings.faceset_b  # type: ignore[attr-defined]
    if direction == "b-to-a":  # both-ways models only: both facesets are named
        source, target = target, str(source)
    if source is None:
        sink(
            Warning(
                message=f"model {model} names no faceset of the person replaced",
                hint="identity is measured against the target only: distance to source "
                "and retrieval are null",
            )
        )
    centroids = {name: _centroid(workspace, name) for name in (source, target) if name is not None}
    for name, centroid in centroids.items():
        if centroid is None:
            nulled = "identity is null" if name == target else "distance to source is null"
            sink(Warning(message=f"faceset {name} has no embeddings", hint=nulled))
    finder = FaceFinder(backend=backend, min_face=min_face, sink=sink)
    total = sum(first.frames for first, _ in footage)
    sink(
        Started(
            stage="score",
            detail={
                "backend": finder.choice.name,
                "backend_reason": finder.choice.reason,
                "backend_detail": finder.backend.describe(),
                "model": model,
                "direction": direction,
                "videos": len(footage),
                "frames": total,
            },
        )
    )
    # Before the footage, so a faceset that can no longer be loaded fails fast.
    reconstruction = _reconstruction(workspace, trained)
    scorer = _Scorer(
        finder,
        centroids[target],
        None if source is None else centroids[source],
        total,
        sink,
        cancel,
    )
    videos = [scorer.score_pair(first, second) for first, second in footage]
    result = ScoreResult.model_validate(
        _rounded(
            {
                "model": model,
                "step": trained.step,
                "direction": direction,
                "source": source,
                "target": target,
                "backend": finder.choice.name,
                "videos": videos,
                "average": _average(videos),
                "reconstruction": reconstruction,
            }
        )
    )
    sink(Finished(stage="score", result=result.model_dump(mode="json")))
    return result
