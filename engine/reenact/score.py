"""Scoring a reenactment: the First Order Motion Model paper's three numbers.

Given the DRIVING video, the OUTPUT `swapdeck reenact` made from it and the
SOURCE portrait it animated, frame by frame (output frame i was made from
driving frame i):

- AKD, average keypoint distance: the 68 landmarks of the driving frame's crop
  (cut exactly as reenact cut it: the shots of the driving video planned with the
  same finder, each frame cut with its shot's box at the model's size) against
  the landmarks of the output frame, mean L2 in pixels at the model's size, and
  the same normalised by the driving face's outer-eye distance (score's NME);
- AED, average Euclidean distance of identity: each output face's dlib 128-d
  embedding against the source face's (two photos of one person are usually
  under 0.6 apart);
- L1: the mean absolute pixel difference (pixels in [0, 1]) between output and
  driving crop, only in the paper's reconstruction setting, where the source is
  a frame of the driving video itself: SOURCE is then the DRIVING video, and its
  first frame (cut with its shot's box) is the portrait.

Faces are looked for on each side independently, as the paper's detector does
on real and generated frames: an output the detector cannot find a face in is
counted, not guessed at. Landmark fitters are made for faces of 80 px and more;
a small model's crop (64 px) holds a face of about 35, so both crops are enlarged
to WORK px before faces are looked for, and distances are scaled back to the
model's size. The source's embedding is taken from its crop at the model's size
enlarged the same way (what the model saw), so an output equal to the source
measures exactly 0.

An OUTPUT at the model's size is the face video; one of the portrait's size was
pasted back, and its face is cut with the portrait's box before comparing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.errors import BadInputError, CancelledError, NoFacesError, NotFoundError
from engine.events import (
    CancelToken,
    Finished,
    FrameProgress,
    Sink,
    Started,
    Warning,
    null_sink,
)
from engine.faces.finder import FaceFinder
from engine.faces.identity import Embedder
from engine.media.images import read_image
from engine.media.prefetch import prefetch
from engine.media.sources import expand_sources
from engine.reenact.crop import CropBox, Shot, plan_shots, portrait_box
from engine.reenact.portraits import first_frame, same_file
from engine.results import ReenactScoreResult
from engine.score import _count_video_frames as count_video_frames
from engine.train.checkpoint import read_info
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace

FAMILY = "fomm"
# The finder's smallest face, as reenact's: the same shots and boxes need the same finder.
MIN_FACE = 40
# Crops are enlarged to at least this many px before faces are looked for (see above).
WORK = 256
# Faces in a WORK-px crop are about half its side: HOG's smallest face (80 px) is plenty.
_CROP_MIN_FACE = 80
# The iBUG outer eye corners: the NME normaliser score uses too.
_EYE_OUTER = (36, 45)


def model_family(workspace: Workspace, name: str) -> str | None:
    """The family of model `name`, or None when the workspace has no such model."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        return None
    return load_settings(paths.toml).family


@dataclass(frozen=True)
class _Model:
    name: str
    size: int
    step: int


def _load_model(workspace: Workspace, name: str) -> _Model:
    """Size and step of a trained fomm model, without loading its weights (none are needed)."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        raise NotFoundError(
            f"no model {name!r} in {workspace.models_dir}",
            "import one (swapdeck import fomm) or train one (swapdeck train --family fomm)",
        )
    settings = load_settings(paths.toml)
    if settings.family != FAMILY:
        raise BadInputError(
            f"model {name} is not a reenactment ({FAMILY}) model but of family {settings.family}",
            "score a swap as ORIGINAL SWAPPED, without --source",
        )
    if not paths.checkpoint.exists():
        raise BadInputError(
            f"model {name} has not been trained yet (no checkpoint)",
            "import or train it first",
        )
    info = read_info(paths.checkpoint)
    return _Model(name, int(settings.size), int(info.get("step", 0)))  # type: ignore[attr-defined]


def _video(path: Path, what: str) -> Path:
    items = expand_sources([path])  # missing or unreadable paths are refused here
    if len(items) != 1 or items[0].kind != "video" or not items[0].explicit:
        raise BadInputError(f"{what} {path} is not a video", f"give the {what.lower()} video file")
    return path


# ---- faces in crops ------------------------------------------------------------------------


@dataclass
class _Face:
    landmarks: np.ndarray  # (68, 2) at WORK px
    image: np.ndarray  # the enlarged crop they were fitted on


class _Faces:
    """The largest face of enlarged crops, found with the finder's backend."""

    def __init__(self, finder: FaceFinder, size: int) -> None:
        self.backend = finder.backend
        self.work = max(size, WORK)
        self.embedder = Embedder()

    def enlarge(self, crop: np.ndarray) -> np.ndarray:
        if crop.shape[0] == self.work:
            return crop
        return cv2.resize(crop, (self.work, self.work), interpolation=cv2.INTER_CUBIC)

    def find(self, crops: list[np.ndarray]) -> list[_Face | None]:
        images = [self.enlarge(c) for c in crops]
        found: list[_Face | None] = []
        # One batch for both sides of a frame: the GPU backend likes batches.
        for image, detections in zip(images, self.backend.detect_batch(images), strict=True):
            if not detections:
                found.append(None)
                continue
            best = max(detections, key=lambda d: d.width * d.height)
            landmarks = self.backend.landmarks(image, [best.box])[0]
            found.append(_Face(np.asarray(landmarks, np.float32), image))
        return found

    def embed(self, face: _Face) -> np.ndarray | None:
        try:
            return self.embedder.embed(face.image, face.landmarks)
        except (RuntimeError, ValueError):  # dlib refuses chips it cannot cut
            return None


def _eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[_EYE_OUTER[1]] - landmarks[_EYE_OUTER[0]]))


# ---- the source ----------------------------------------------------------------------------


@dataclass
class _Source:
    crop: np.ndarray  # at the model's size
    box: CropBox  # where the face is in the portrait (paste-back cuts with it)
    reconstruction: bool  # the source is the driving video's first frame


def _source_picture(path: Path, driving: Path, start: float | None) -> tuple[np.ndarray, bool]:
    """SOURCE's picture, and whether it is the driving video's first frame (reconstruction)."""
    item = expand_sources([path])
    if len(item) != 1 or not item[0].explicit:
        raise BadInputError(f"--source {path} is a folder", "score one portrait at a time")
    if item[0].kind == "image":
        return read_image(path), False
    # A video stands for its first frame (of the scored range, when it is the driving one).
    same = same_file(path, driving)
    return first_frame(path, start if same else None), same


def _source(
    image: np.ndarray, reconstruction: bool, shots: list[Shot], finder: FaceFinder, size: int
) -> _Source:
    if not reconstruction:
        box = portrait_box(image, finder)
        return _Source(box.cut(image, size), box, False)
    # The paper's reconstruction setting: the first frame, cut as reenact cut the video.
    box = shots[0].box if shots else None
    if box is None:
        raise NoFacesError(
            "no face in the driving video's first shot",
            "the first frame of the driving video is the portrait: it must show a face",
        )
    return _Source(box.cut(image, size), box, True)


# ---- the run -------------------------------------------------------------------------------


@dataclass
class _Tally:
    compared: int = 0
    without_face: int = 0  # driving frames of shots with no face: nothing to compare
    driving_missed: int = 0
    output_missed: int = 0
    scored: int = 0
    akd_px: float = 0.0
    akd_nme: float = 0.0
    aed_frames: int = 0
    aed: float = 0.0
    l1_frames: int = 0
    l1: float = 0.0

    @staticmethod
    def mean(total: float, count: int) -> float | None:
        return round(total / count, 6) if count else None


def _shot_boxes(shots: list[Shot]) -> Iterator[CropBox | None]:
    """Each frame's box, in frame order."""
    for shot in shots:
        for _ in range(shot.frames):
            yield shot.box


def _pairs(
    driving: Path, output: Path, start: float | None, end: float | None, count: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(index, driving frame, output frame) for the first `count` frames of both."""
    from engine.convert.video_io import decode, open_input

    frames = zip(
        decode(open_input(driving, start, end)),
        decode(open_input(output, None, None)),
        strict=False,
    )
    for index, (first, second) in enumerate(frames):
        if index >= count:
            return
        yield index, first.rgb, second.rgb


class _Scorer:
    def __init__(
        self,
        faces: _Faces,
        source: _Source,
        size: int,
        paste_back: bool,
        total: int,
        sink: Sink,
        cancel: CancelToken,
    ) -> None:
        self.faces = faces
        self.source = source
        self.size = size
        self.paste_back = paste_back
        self.total = total
        self.sink = sink
        self.cancel = cancel
        self.tally = _Tally()
        self._progress_to = FrameProgress(sink, "score", total)
        found = faces.find([source.crop])[0]
        embedding = faces.embed(found) if found is not None else None
        if embedding is None:
            raise NoFacesError(
                "no face found in the source's crop", "use the portrait the output was made from"
            )
        self.source_embedding = embedding

    def run(self, pairs: Iterator[tuple[int, np.ndarray, np.ndarray]], boxes: list[Shot]) -> _Tally:
        shot_boxes = _shot_boxes(boxes)
        for index, driving, output in prefetch(pairs):
            if self.cancel.cancelled:
                raise CancelledError(
                    f"score cancelled after {index} frames", "run it again to get the scores"
                )
            self._frame(next(shot_boxes, None), driving, output)
            self._progress()
        self._progress(force=True)
        return self.tally

    def _frame(self, box: CropBox | None, driving: np.ndarray, output: np.ndarray) -> None:
        tally = self.tally
        tally.compared += 1
        if box is None:
            tally.without_face += 1
            return
        want = box.cut(driving, self.size)
        got = self.source.box.cut(output, self.size) if self.paste_back else output
        if self.source.reconstruction:
            tally.l1 += float(np.abs(got.astype(np.float32) - want).mean()) / 255.0
            tally.l1_frames += 1
        seen_driving, seen_output = self.faces.find([want, got])
        tally.driving_missed += seen_driving is None
        tally.output_missed += seen_output is None
        if seen_output is not None:
            embedding = self.faces.embed(seen_output)
            if embedding is not None:
                tally.aed += float(np.linalg.norm(embedding - self.source_embedding))
                tally.aed_frames += 1
        if seen_driving is None or seen_output is None:
            return
        eyes = _eye_distance(seen_driving.landmarks)
        if eyes < 1.0:  # a degenerate fit: nothing to normalise by
            tally.driving_missed += 1
            return
        offsets = np.linalg.norm(seen_output.landmarks - seen_driving.landmarks, axis=1).mean()
        tally.akd_px += float(offsets) * self.size / self.faces.work
        tally.akd_nme += float(offsets) / eyes
        tally.scored += 1

    def _progress(self, force: bool = False) -> None:
        t = self.tally
        self._progress_to(t.compared, {"scored": t.scored}, force=force)


def _plan(
    driving: Path,
    finder: FaceFinder,
    start: float | None,
    end: float | None,
    sink: Sink,
    cancel: CancelToken,
) -> list[Shot]:
    """The shots of the range, found as reenact found them (same finder, same range)."""
    from engine.convert.video_io import open_input

    estimate = open_input(driving, start, end).frames  # the header's word: a bar's length
    progress = FrameProgress(sink, "shots", estimate)
    shots = plan_shots(driving, finder, start=start, end=end, cancel=cancel, progress=progress)
    frames = shots[-1].end if shots else 0
    progress.total = frames
    progress(frames, force=True)
    return shots


def _is_paste_back(output: Path, size: int, portrait: tuple[int, ...]) -> bool:
    """Whether OUTPUT is the whole portrait (pasted back) rather than the model's faces."""
    from engine.convert.video_io import open_input

    video = open_input(output, None, None)
    if (video.width, video.height) == (size, size):
        return False
    height, width = portrait[:2]
    if (video.width, video.height) == (width, height):  # reenact keeps odd sizes too
        return True
    raise BadInputError(
        f"{output} is {video.width}x{video.height}: neither the model's {size}x{size} faces "
        f"nor the portrait's {width}x{height} (pasted back)",
        "give the video reenact made from this driving video and portrait",
    )


def _warn(sink: Sink, tally: _Tally, frames: int, output_frames: int, output: Path) -> None:
    if output_frames != frames:
        sink(
            Warning(
                message=f"{output} has {output_frames} frames, the driving video {frames}: "
                f"the first {min(frames, output_frames)} of each are compared",
                hint="reenact keeps one frame per driving frame; was it run with --start/--end?"
                " give score the same",
            )
        )
    if tally.without_face:
        sink(
            Warning(
                message=f"{tally.without_face} driving frames are in shots without a face",
                hint="they are left out",
            )
        )
    missed = max(tally.driving_missed, tally.output_missed)
    if missed:
        sink(
            Warning(
                message=f"no face found in {tally.driving_missed} driving crops and "
                f"{tally.output_missed} output frames",
                hint="those frames are left out of AKD (and, without an output face, of AED)",
            )
        )


def score_reenactment(
    workspace: Workspace,
    model: str,
    driving: Path,
    output: Path,
    source: Path,
    *,
    backend: str = "auto",
    min_face: int = MIN_FACE,
    start: float | None = None,
    end: float | None = None,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> ReenactScoreResult:
    """Score OUTPUT, which fomm model `model` made from SOURCE and DRIVING: AKD, AED, L1.

    `start`/`end` (seconds of DRIVING) must be the ones reenact was given, so the
    shots, their boxes and the frame numbers are the same. SOURCE the DRIVING
    video itself means its first frame was the portrait (the paper's
    reconstruction setting): only then is L1 measured. Emits Started, Progress
    (stage "shots" while the driving video is planned, then "score"), Warning and
    Finished; checks `cancel` between frames; memory does not grow with the
    videos' length. Figures are None where nothing could be measured.
    """
    cancel = cancel or CancelToken()
    spec = _load_model(workspace, model)
    driving, output = _video(Path(driving), "DRIVING"), _video(Path(output), "OUTPUT")
    source = Path(source)
    picture, reconstruction = _source_picture(source, driving, start)
    # Before the finder loads and the driving video is planned: a wrong OUTPUT fails fast.
    paste_back = _is_paste_back(output, spec.size, picture.shape)
    output_frames = count_video_frames(output)
    finder = FaceFinder(backend=backend, min_face=min_face, sink=sink)
    sink(
        Started(
            stage="score",
            detail={
                "backend": finder.choice.name,
                "backend_reason": finder.choice.reason,
                "model": model,
                "kind": "reenactment",
                "size": spec.size,
            },
        )
    )

    shots = _plan(driving, finder, start, end, sink, cancel)
    frames = shots[-1].end if shots else 0
    portrait = _source(picture, reconstruction, shots, finder, spec.size)
    del picture  # a big portrait is not held through the run
    # A crop's face is about half its side, whatever the planner's --min-face was for whole
    # frames: no upsampling needed (dlib's HOG would upsample 2x for a small min-face).
    finder.backend.set_min_face(_CROP_MIN_FACE)
    faces = _Faces(finder, spec.size)
    count = min(frames, output_frames)
    scorer = _Scorer(faces, portrait, spec.size, paste_back, count, sink, cancel)
    tally = scorer.run(_pairs(driving, output, start, end, count), shots)
    _warn(sink, tally, frames, output_frames, output)
    if not tally.scored:
        sink(Warning(message="no frame had a face on both sides", hint="AKD is null"))
    result = ReenactScoreResult(
        model=model,
        step=spec.step,
        size=spec.size,
        source=str(source),
        driving=str(driving),
        output=str(output),
        reconstruction=portrait.reconstruction,
        paste_back=paste_back,
        frames=frames,
        output_frames=output_frames,
        frames_compared=tally.compared,
        frames_without_face=tally.without_face,
        frames_scored=tally.scored,
        driving_missed=tally.driving_missed,
        output_missed=tally.output_missed,
        akd_px=tally.mean(tally.akd_px, tally.scored),
        akd_nme=tally.mean(tally.akd_nme, tally.scored),
        aed=tally.mean(tally.aed, tally.aed_frames),
        aed_frames=tally.aed_frames,
        l1=tally.mean(tally.l1, tally.l1_frames) if portrait.reconstruction else None,
        backend=finder.choice.name,
    )
    sink(Finished(stage="score", result=result.model_dump(mode="json")))
    return result
