"""`swapdeck reenact`: a portrait moved the way the person in a driving video moves (FOMM).

Up to three passes over the driving video, none of which keeps more than a batch
of frames, so memory stays flat however long it is:

1. plan: cuts on every frame and faces on every other one give each shot one
   steady square (engine.reenact.crop.plan_shots);
2. references (only when needed): the frames motion is measured from, where one
   lies too far into its shot to wait for in pass 3;
3. reenact: each frame cut with its shot's box, batched through the keypoint
   detector, the motion made relative (engine.train.families.fomm.motion), the
   portrait animated, optionally pasted back into the whole portrait,
   watermarked and encoded with the driving video's audio (convert's writer).

Each shot is measured from its own reference frame: after a cut the framing (or
the person) changes, and a displacement across it would be no motion at all.
The reference is the shot's first frame with a face, or with --best-frame the
one whose landmarks are nearest the portrait's. Animating every frame in video
order relative to that frame is the authors' forward-and-backward best-frame
animation exactly (both halves are measured from the same frame), without
running or holding anything backwards. Frames of a shot with no face hold the
last animated frame (the still portrait before any), and are counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.config import ReenactConfig
from engine.convert.video_io import FORMATS, InputVideo, decode
from engine.errors import BadInputError, CancelledError, NoFacesError
from engine.events import (
    CancelToken,
    Finished,
    FrameProgress,
    Info,
    Sink,
    Started,
    Warning,
    null_sink,
)
from engine.faces.finder import FaceFinder
from engine.media.paths import printable
from engine.reenact.checks import check
from engine.reenact.crop import CropBox, Shot, plan_shots
from engine.reenact.portraits import (
    Portrait,
    fetch_crops,
    load_portraits,
    references,
    same_file,
)
from engine.results import ReenactResult
from engine.workspace import Workspace, atomic_folder, atomic_path, disk_full_refused

if TYPE_CHECKING:  # torch is loaded with the model, not on import
    import torch

    from engine.train.families.fomm.inference import Reenactor

    KP = dict[str, torch.Tensor]

# A reference frame this many frames into its shot or fewer is waited for in the reenact
# pass (the frames before it held as crops, a few MB at 256 px); one further in is
# fetched by a pass of its own first.
WAIT_FOR_REFERENCE = 30


@contextlib.contextmanager
def _output_paths(config: ReenactConfig, outputs: list[Path], folder: bool) -> Iterator[list[Path]]:
    """Temporary paths for every output, renamed into place only when all are complete
    (a folder of videos is filled beside OUTPUT, then renamed in as convert does)."""
    if not folder:
        with atomic_path(config.output) as tmp:
            yield [tmp]
        return
    with atomic_folder(config.output) as tmp:
        yield [tmp / p.name for p in outputs]


class _Animator:
    """Pass 3's state: the batch of driving crops of the current shot and the keypoints
    of the reference frames seen so far; animates and hands frames on in video order."""

    def __init__(
        self,
        config: ReenactConfig,
        model: Reenactor,
        portraits: list[Portrait],
        refs: dict[tuple[int, int], int],
        kp_at: dict[int, KP],
        put: Callable[[int, np.ndarray, int], None],
    ) -> None:
        self.config, self.model, self.portraits = config, model, portraits
        self.refs, self.kp_at, self.put = refs, kp_at, put
        self.batch: list[tuple[int, int, np.ndarray]] = []  # (index, pts, crop)
        self.shot = -1

    def _wanted(self) -> set[int]:
        """The reference frames of the current shot (none for absolute motion)."""
        if not self.config.relative:
            return set()
        return {self.refs[p, self.shot] for p in range(len(self.portraits))}

    def add(self, shot: int, index: int, pts: int, crop: np.ndarray) -> None:
        if shot != self.shot:
            self.flush()
            self.shot = shot
        self.batch.append((index, pts, crop))
        # Full, and the references known (seen before, or in this batch): go.
        known = set(self.kp_at) | {i for i, _, _ in self.batch}
        if len(self.batch) >= self.config.batch_size and self._wanted() <= known:
            self.flush()

    def flush(self) -> None:
        from engine.train.families.fomm.motion import relative_motion

        if not self.batch:
            return
        kp_driving = self.model.keypoints(np.stack([c for _, _, c in self.batch]))
        wanted = self._wanted()
        for k, (index, _, _) in enumerate(self.batch):
            if index in wanted:
                self.kp_at[index] = {key: v[k : k + 1] for key, v in kp_driving.items()}
        for p, portrait in enumerate(self.portraits):
            initial = self.kp_at[self.refs[p, self.shot]] if self.config.relative else portrait.kp
            kp = relative_motion(
                portrait.kp,
                kp_driving,
                initial,
                relative=self.config.relative,
                adapt_scale=self.config.adapt_scale,
            )
            frames = self.model.animate(portrait.crop, portrait.kp, kp)
            for (_, pts, _), frame in zip(self.batch, frames, strict=True):
                portrait.last = portrait.finish(frame)
                self.put(p, portrait.last, pts)
        self.batch.clear()


def _shot_of(shots: list[Shot]) -> Callable[[int], int]:
    """index → the number of the shot holding it (asked in increasing order)."""
    at = 0

    def find(index: int) -> int:
        nonlocal at
        while at < len(shots) - 1 and index >= shots[at].end:
            at += 1
        return at

    return find


def _run_video(
    config: ReenactConfig,
    video: InputVideo,
    shots: list[Shot],
    portraits: list[Portrait],
    refs: dict[tuple[int, int], int],
    kp_at: dict[int, KP],
    model: Reenactor,
    folder: bool,
    sink: Sink,
    cancel: CancelToken,
) -> tuple[int, int, int]:
    """Pass 3: every output written; returns (frames, frames without a face, audio streams)."""
    # Convert's writer: watermarks in a small pool, encodes in order on a thread of its own.
    from engine.convert.video_io import MarkedWriter, VideoOutput

    progress = FrameProgress(sink, "reenact", video.frames or None)
    frames = without_face = 0
    shot_of = _shot_of(shots)
    outputs: list[VideoOutput] = []
    writers: list[MarkedWriter] = []
    with _output_paths(config, [p.output for p in portraits], folder) as tmps:
        try:
            for portrait, tmp in zip(portraits, tmps, strict=True):
                h, w = portrait.still().shape[:2]
                fmt = FORMATS[portrait.output.suffix.lower()]
                sized = dataclasses.replace(video, width=w, height=h)
                outputs.append(VideoOutput(tmp, fmt, sized))
                writers.append(MarkedWriter(outputs[-1]))
            animator = _Animator(
                config, model, portraits, refs, kp_at, lambda p, f, pts: writers[p].put(f, pts)
            )
            for frame in decode(video):
                if cancel.cancelled:
                    raise CancelledError(
                        f"reenact cancelled after {frames} frames; nothing was written to "
                        f"{printable(config.output)}",
                        "run it again",
                    )
                n = shot_of(frame.index)
                box = shots[n].box
                if box is None:
                    animator.flush()  # the frames before this one go first
                    for writer, portrait in zip(writers, portraits, strict=True):
                        held = portrait.last if portrait.last is not None else portrait.still()
                        writer.put(held, frame.pts)
                    without_face += 1
                else:
                    animator.add(n, frame.index, frame.pts, box.cut(frame.rgb, model.size))
                frames += 1
                progress(frames, {"frames_without_face": without_face})
            animator.flush()
            for writer, output in zip(writers, outputs, strict=True):
                writer.finish()
                output.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            for output in outputs:
                output.abort()
            raise
    progress(frames, {"frames_without_face": without_face}, force=True)
    return frames, without_face, outputs[0].audio_streams


def _far_references(
    config: ReenactConfig,
    video: InputVideo,
    shots: list[Shot],
    refs: dict[tuple[int, int], int],
    model: Reenactor,
    sink: Sink,
    cancel: CancelToken,
) -> dict[int, KP]:
    """Pass 2: keypoints of the reference frames too far into their shots to wait for."""
    if not config.relative:
        return {}
    far: dict[int, CropBox] = {}
    for (_, n), index in refs.items():
        box = shots[n].box
        if box is not None and index - shots[n].start > WAIT_FOR_REFERENCE:
            far[index] = box
    if not far:
        return {}
    sink(Info(message=f"reading {len(far)} reference frame(s) ahead"))
    crops = fetch_crops(video, far, model.size, cancel)
    return {index: model.keypoints(crop[None]) for index, crop in crops.items()}


def reenact(
    config: ReenactConfig,
    workspace: Workspace,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> ReenactResult:
    """Move the portrait config.source (or each portrait of a folder) the way the person
    in config.driving moves, and write config.output (a video, or a folder of them),
    marked as AI-generated, with the driving video's audio.

    With `config.preview_frames`, only renders that many driving frames and what they make
    of each portrait into one PNG at config.output.
    """
    from engine.reenact.preview import render_preview
    from engine.train.families.fomm.inference import load_reenactor

    cancel = cancel or CancelToken()
    inputs = check(config, workspace)
    video = inputs.video
    model = load_reenactor(workspace, config.model, config.device)
    finder = FaceFinder(config.backend, device=config.device, sink=sink)
    started = time.monotonic()
    # SOURCE the driving video itself (the paper's reconstruction): its first frame is cut
    # with its shot's box, so the portrait waits for the plan.
    reconstruct = same_file(config.source, config.driving)
    portraits = (
        []
        if reconstruct
        else load_portraits(inputs.images, inputs.outputs, finder, model, config.paste_back, sink)
    )
    sink(
        Started(
            stage="reenact",
            detail={
                "model": model.name,
                "step": model.step,
                "size": model.size,
                "device": str(model.device),
                "source": printable(config.source),
                "portraits": len(inputs.images),
                "driving": printable(config.driving),
                "output": printable(config.output),
                "frames": video.frames,
                "motion": "relative" if config.relative else "absolute",
                "adapt_scale": config.adapt_scale,
                "best_frame": config.best_frame,
                "paste_back": config.paste_back,
                "backend": finder.choice.name,
                "backend_reason": finder.choice.reason,
            },
        )
    )
    plan_progress = FrameProgress(sink, "plan", video.frames or None)
    shots = plan_shots(
        config.driving,
        finder,
        start=config.start,
        end=config.end,
        cancel=cancel,
        progress=plan_progress,
    )
    total = sum(s.frames for s in shots)
    plan_progress(total, force=True)
    if not total:
        raise BadInputError(
            f"no frames of {printable(config.driving)} between --start and --end",
            "check the times against the video's length",
        )
    if not any(s.box is not None for s in shots):
        raise NoFacesError(
            f"no face found in {total} frames of {printable(config.driving)}",
            "the driving video must show a face the face finder can see",
        )
    if reconstruct:
        portraits = load_portraits(
            inputs.images,
            inputs.outputs,
            finder,
            model,
            config.paste_back,
            sink,
            driving=(config.driving, config.start, shots),
        )
    if len(shots) > 1:
        sink(Info(message=f"{len(shots)} shots in the driving video, each with its own box"))
    refs = references(shots, portraits, config.best_frame)
    first = next(n for n, s in enumerate(shots) if s.box is not None)
    with disk_full_refused(config.output):
        if config.preview_frames:
            frames = render_preview(config, video, shots, portraits, refs, model, cancel)
            without_face = audio = 0
        else:
            kp_at = _far_references(config, video, shots, refs, model, sink, cancel)
            frames, without_face, audio = _run_video(
                config, video, shots, portraits, refs, kp_at, model, inputs.folder, sink, cancel
            )
    seconds = time.monotonic() - started
    if video.undecodable:
        sink(
            Warning(
                message=f"{video.undecodable} frame(s) of {config.driving} could not be decoded",
                hint="they were skipped; the output has that many fewer frames",
            )
        )
    outputs = [p.output for p in portraits] if inputs.folder else [config.output]
    result = ReenactResult(
        outputs=[printable(p) for p in outputs],
        frames=frames,
        shots=len(shots),
        frames_without_face=without_face,
        start_frame=refs[0, first],
        seconds=round(seconds, 3),
        frames_per_s=round(frames / seconds, 3) if seconds > 0 else 0.0,
        audio_streams=audio,
        preview=printable(config.output) if config.preview_frames else None,
    )
    sink(Finished(stage="reenact", result=result.model_dump(mode="json")))
    return result
