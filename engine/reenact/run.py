"""`swapdeck reenact`: a portrait moved the way the person in a driving video moves (FOMM).

Three passes over the driving video, none of which keeps more than a batch of
frames, so memory stays flat however long it is:

1. plan: cuts on every frame and faces on every other one give each shot one
   steady square (engine.reenact.crop.plan_shots);
2. references (only when needed): the frames motion is measured from, when one
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
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.config import ReenactConfig
from engine.convert.video_io import FORMATS, InputVideo, decode, open_input
from engine.errors import (
    BadInputError,
    CancelledError,
    NoFacesError,
    NotFoundError,
    WorkspaceError,
)
from engine.events import CancelToken, Finished, Info, Progress, Sink, Started, Warning, null_sink
from engine.faces.finder import FaceFinder
from engine.media.images import is_image_path, read_image
from engine.media.paths import check_path, printable
from engine.reenact.crop import CropBox, Shot, plan_shots, portrait_face
from engine.results import ReenactResult
from engine.workspace import Workspace, atomic_path, atomic_write_bytes

if TYPE_CHECKING:  # torch is loaded with the model, not on import
    import torch

    from engine.train.families.fomm.inference import Reenactor

    KP = dict[str, torch.Tensor]

_PROGRESS_EVERY_S = 0.25
# A reference frame this many frames into its shot or fewer is waited for in the reenact
# pass (the frames before it held as crops, a few MB at 256 px); one further in is
# fetched by a pass of its own first.
_WAIT_FOR_REFERENCE = 30
# Write errors that mean no room: disk full, file-size limit, quota.
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_TILE = 192  # px of each picture on the --preview-frames sheet


@dataclass
class _Portrait:
    path: Path
    image: np.ndarray  # the whole portrait (pasted into with --paste-back)
    box: CropBox
    crop: np.ndarray  # (S, S, 3): what the model animates
    landmarks: np.ndarray  # (68, 2) in the box's unit square
    kp: KP  # its keypoints, (1, K, ...)
    output: Path  # where its video goes (the final name)
    last: np.ndarray | None = None  # the last frame written, held through faceless shots

    def still(self, paste_back: bool) -> np.ndarray:
        return self.image if paste_back else self.crop


# ---- checks ---------------------------------------------------------------------------------


def _source_kind(path: Path) -> str:
    if check_path(path, "image"):
        return "folder"
    if not is_image_path(path):
        raise BadInputError(
            f"{path.name} is not a picture (SOURCE is a portrait image or a folder of them)",
            "give a .jpg, .png or .webp portrait",
        )
    return "image"


def _source_images(config: ReenactConfig, kind: str) -> list[Path]:
    if kind == "image":
        return [config.source]
    from engine.media.sources import _natural_key

    try:
        entries = sorted(config.source.iterdir(), key=_natural_key)
    except OSError as exc:
        raise BadInputError(f"cannot list {config.source} ({exc.strerror})", "check it") from None
    images = [p for p in entries if p.is_file() and is_image_path(p)]
    if not images:
        raise BadInputError(f"{config.source} holds no images", "give a folder of portraits")
    return images


def _output_names(images: list[Path]) -> list[str]:
    """One video name per portrait of a folder: NAME.mp4, with the suffix kept where two
    portraits share a name (a.jpg and a.png)."""
    stems = [p.stem for p in images]
    return [
        f"{p.stem}.mp4" if stems.count(p.stem) == 1 else f"{p.stem}-{p.suffix[1:]}.mp4"
        for p in images
    ]


def _check_output(config: ReenactConfig, kind: str) -> None:
    out = config.output
    parent = out.parent if str(out.parent) else Path(".")
    try:
        exists, is_dir = out.exists(), parent.is_dir()
        same = exists and any(out.resolve() == p.resolve() for p in (config.source, config.driving))
    except OSError as exc:
        raise BadInputError(
            f"cannot write {out} ({exc.strerror})", "choose another OUTPUT"
        ) from None
    if same:
        raise BadInputError("OUTPUT is one of the inputs", "write the result somewhere else")
    if exists and not config.overwrite:
        raise BadInputError(f"{out} already exists", "add --overwrite to replace it")
    if not is_dir:
        raise BadInputError(f"folder {parent} does not exist", "create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WorkspaceError(f"cannot write to folder {parent}", "choose a folder you can write")
    suffix = out.suffix.lower()
    if config.preview_frames:
        if suffix != ".png":
            raise BadInputError("with --preview-frames, OUTPUT is a .png", "name it e.g. try.png")
    elif kind == "folder":
        if exists and not out.is_dir():
            raise BadInputError(
                f"{out} is a file; SOURCE is a folder, so OUTPUT is a folder of videos",
                "name a folder",
            )
    elif suffix not in FORMATS:
        raise BadInputError(
            f"cannot tell the video format from {out.name}",
            f"end OUTPUT with one of {', '.join(sorted(FORMATS))}",
        )


def _check_model(workspace: Workspace, name: str) -> None:
    """The model's name and family, read from model.toml without loading any weights."""
    from engine.train.store import ModelPaths, load_settings

    toml = ModelPaths(workspace.model_dir(name)).toml
    if not toml.exists():
        raise NotFoundError(
            f"no model {name!r} in {workspace.models_dir}",
            "import the authors' weights (swapdeck import fomm CHECKPOINT -w WS -m NAME) "
            "or train one (swapdeck train --family fomm)",
        )
    family = load_settings(toml).family
    if family != "fomm":
        raise BadInputError(
            f"model {name} is a {family} model, not a fomm (reenactment) model",
            "reenact with a fomm model: swapdeck import fomm CHECKPOINT -w WS -m NAME",
        )


def check(config: ReenactConfig, workspace: Workspace) -> InputVideo:
    """Everything that can be checked before a model loads (a detached job checks this
    first, so a typo fails in the terminal, not in the job's log); returns the driving
    video's range."""
    kind = _source_kind(config.source)
    _source_images(config, kind)
    if check_path(config.driving, "video"):
        raise BadInputError(f"DRIVING {config.driving} is a folder", "give one video")
    video = open_input(config.driving, config.start, config.end)
    _check_output(config, kind)
    _check_model(workspace, config.model)
    return video


# ---- portraits ------------------------------------------------------------------------------


def _portraits(
    config: ReenactConfig,
    images: list[Path],
    names: list[Path],
    finder: FaceFinder,
    model: Reenactor,
    sink: Sink,
) -> list[_Portrait]:
    """Each portrait cut square around its face, with its landmarks and keypoints; one
    without a face is refused (alone) or skipped with a warning (in a folder)."""
    portraits = []
    for path, output in zip(images, names, strict=True):
        try:
            image = read_image(path)
            box, landmarks = portrait_face(image, finder)
        except (BadInputError, NotFoundError, NoFacesError) as exc:
            if isinstance(exc, NoFacesError):
                exc = NoFacesError(
                    f"no face found in {printable(path)}",
                    "use a portrait showing one face, upright and unhidden",
                )
            if len(images) == 1:
                raise exc from None
            sink(Warning(message=exc.message, hint="skipped"))
            continue
        crop = box.cut(image, model.size)
        portraits.append(
            _Portrait(
                path=path,
                image=np.ascontiguousarray(image),
                box=box,
                crop=crop,
                landmarks=box.from_frame(landmarks),
                kp=model.keypoints(crop[None]),
                output=output,
            )
        )
    if not portraits:
        raise NoFacesError(
            f"no face found in any of the {len(images)} portraits in {printable(config.source)}",
            "use portraits showing one face each, upright and unhidden",
        )
    return portraits


# ---- reference frames -----------------------------------------------------------------------


def _references(
    config: ReenactConfig, shots: list[Shot], portraits: list[_Portrait]
) -> dict[tuple[int, int], int]:
    """(portrait, shot) → the driving frame that shot's motion is measured from."""
    from engine.train.families.fomm.motion import best_frame

    refs: dict[tuple[int, int], int] = {}
    for n, shot in enumerate(shots):
        if shot.box is None or not shot.landmarks:
            continue
        sampled = sorted(shot.landmarks)
        for p, portrait in enumerate(portraits):
            if config.best_frame:
                at = best_frame(portrait.landmarks, [shot.landmarks[i] for i in sampled])
                refs[p, n] = sampled[at]
            else:
                refs[p, n] = sampled[0]
    return refs


def _fetch_crops(
    video: InputVideo, wanted: dict[int, CropBox], size: int, cancel: CancelToken
) -> dict[int, np.ndarray]:
    """The frames `wanted` names, cut with their boxes; decoding stops after the last."""
    crops: dict[int, np.ndarray] = {}
    if not wanted:
        return crops
    last = max(wanted)
    for frame in decode(dataclasses.replace(video)):
        if cancel.cancelled:
            raise CancelledError("reenact cancelled; nothing was written", "run it again")
        if frame.index in wanted:
            crops[frame.index] = wanted[frame.index].cut(frame.rgb, size)
        if frame.index >= last:
            break
    return crops


# ---- writing --------------------------------------------------------------------------------


@contextlib.contextmanager
def _output_paths(
    config: ReenactConfig, portraits: list[_Portrait], folder: bool
) -> Iterator[list[Path]]:
    """Temporary paths for every output, renamed into place only when all are complete."""
    if not folder:
        with atomic_path(config.output) as tmp:
            yield [tmp]
        return
    out = config.output
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield [tmp / p.output.name for p in portraits]
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _Progress:
    def __init__(self, sink: Sink, stage: str, total: int | None) -> None:
        self.sink, self.stage, self.total = sink, stage, total
        self._last = 0.0

    def __call__(
        self, done: int, counts: dict[str, float] | None = None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if force or now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self.sink(
                Progress(
                    stage=self.stage,
                    done=done,
                    total=self.total or None,
                    unit="frames",
                    counts=counts or {},
                )
            )


class _Animator:
    """Pass 3's state: the batch of driving crops of the current shot and what is known of
    its reference frames; animates and hands frames to the writers in video order."""

    def __init__(
        self,
        config: ReenactConfig,
        model: Reenactor,
        portraits: list[_Portrait],
        refs: dict[tuple[int, int], int],
        kp_at: dict[int, KP],
        put: Callable[[int, np.ndarray, int], None],
    ) -> None:
        self.config, self.model, self.portraits = config, model, portraits
        self.refs, self.kp_at, self.put = refs, kp_at, put
        self.batch: list[tuple[int, int, np.ndarray]] = []  # (index, pts, crop)
        self.shot = -1

    def _refs_known(self) -> bool:
        if not self.config.relative:
            return True
        seen = {i for i, _, _ in self.batch}
        return all(
            self.refs[p, self.shot] in self.kp_at or self.refs[p, self.shot] in seen
            for p in range(len(self.portraits))
        )

    def add(self, shot: int, index: int, pts: int, crop: np.ndarray) -> None:
        if shot != self.shot:
            self.flush()
            self.shot = shot
        self.batch.append((index, pts, crop))
        if len(self.batch) >= self.config.batch_size and self._refs_known():
            self.flush()

    def flush(self) -> None:
        from engine.train.families.fomm.motion import relative_motion

        if not self.batch:
            return
        crops = np.stack([c for _, _, c in self.batch])
        kp_driving = self.model.keypoints(crops)
        wanted = (
            {self.refs[p, self.shot] for p in range(len(self.portraits))}
            if self.config.relative
            else set()
        )
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
                if self.config.paste_back:
                    frame = portrait.box.paste(portrait.image, frame)
                portrait.last = frame
                self.put(p, frame, pts)
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
    portraits: list[_Portrait],
    refs: dict[tuple[int, int], int],
    kp_at: dict[int, KP],
    model: Reenactor,
    folder: bool,
    sink: Sink,
    cancel: CancelToken,
) -> tuple[int, int, int]:
    """Pass 3: every output written; returns (frames, frames without a face, audio streams)."""
    from engine.convert.run import _Writer
    from engine.convert.video_io import VideoOutput

    progress = _Progress(sink, "reenact", video.frames)
    frames = without_face = 0
    shot_of = _shot_of(shots)
    with _output_paths(config, portraits, folder) as tmps:
        outputs: list[VideoOutput] = []
        writers: list[_Writer] = []
        try:
            for portrait, tmp in zip(portraits, tmps, strict=True):
                h, w = portrait.still(config.paste_back).shape[:2]
                fmt = FORMATS[portrait.output.suffix.lower()]
                outputs.append(VideoOutput(tmp, fmt, dataclasses.replace(video, width=w, height=h)))
                writers.append(_Writer(outputs[-1]))
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
                    animator.flush()  # frames before this one go first
                    for p, portrait in enumerate(portraits):
                        held = (
                            portrait.last
                            if portrait.last is not None
                            else portrait.still(config.paste_back)
                        )
                        writers[p].put(held, frame.pts)
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


# ---- preview --------------------------------------------------------------------------------


def _tile(image: np.ndarray) -> np.ndarray:
    """The picture fitted into a _TILE square on grey."""
    import cv2

    h, w = image.shape[:2]
    scale = _TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    small = cv2.resize(image, size, interpolation=interp)
    out = np.full((_TILE, _TILE, 3), 128, np.uint8)
    y0, x0 = (_TILE - size[1]) // 2, (_TILE - size[0]) // 2
    out[y0 : y0 + size[1], x0 : x0 + size[0]] = small
    return out


def _preview_picks(shots: list[Shot], count: int) -> list[tuple[int, int]]:
    """`count` (shot, frame) pairs spread evenly over the frames of shots with a face."""
    spans = [(n, s.start, s.end) for n, s in enumerate(shots) if s.box is not None]
    total = sum(end - start for _, start, end in spans)
    picks = []
    for k in sorted({int(v) for v in np.linspace(0, total - 1, min(count, total)).round()}):
        for n, start, end in spans:
            if k < end - start:
                picks.append((n, start + k))
                break
            k -= end - start
    return picks


def _preview(
    config: ReenactConfig,
    video: InputVideo,
    shots: list[Shot],
    portraits: list[_Portrait],
    refs: dict[tuple[int, int], int],
    model: Reenactor,
    cancel: CancelToken,
) -> int:
    """The --preview-frames sheet: the portraits along the top, then a row per driving frame
    (its crop, then each portrait moved by it); returns the frames shown."""
    from engine.provenance import encode_image, mark_frame
    from engine.train.families.fomm.motion import relative_motion

    picks = _preview_picks(shots, config.preview_frames)
    wanted: dict[int, CropBox] = {}
    for n, index in picks:
        wanted[index] = shots[n].box  # type: ignore[assignment]
        if config.relative:
            for p in range(len(portraits)):
                wanted[refs[p, n]] = shots[n].box  # type: ignore[assignment]
    crops = _fetch_crops(video, wanted, model.size, cancel)
    indices = sorted(crops)
    kp_all = model.keypoints(np.stack([crops[i] for i in indices]))
    kp_of = {i: {k: v[j : j + 1] for k, v in kp_all.items()} for j, i in enumerate(indices)}
    blank = np.full((_TILE, _TILE, 3), 255, np.uint8)
    rows = [np.concatenate([blank, *(_tile(p.still(config.paste_back)) for p in portraits)], 1)]
    columns = []
    for p, portrait in enumerate(portraits):
        moved = []
        for n, index in picks:
            initial = kp_of[refs[p, n]] if config.relative else portrait.kp
            kp = relative_motion(
                portrait.kp,
                kp_of[index],
                initial,
                relative=config.relative,
                adapt_scale=config.adapt_scale,
            )
            frame = model.animate(portrait.crop, portrait.kp, kp)[0]
            if config.paste_back:
                frame = portrait.box.paste(portrait.image, frame)
            moved.append(_tile(frame))
        columns.append(moved)
    for k, (_, index) in enumerate(picks):
        rows.append(np.concatenate([_tile(crops[index]), *(c[k] for c in columns)], 1))
    sheet = mark_frame(np.concatenate(rows, 0))
    atomic_write_bytes(config.output, encode_image(sheet, ".png"))
    return len(picks)


# ---- entry point ----------------------------------------------------------------------------


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
    from engine.train.families.fomm.inference import load_reenactor

    cancel = cancel or CancelToken()
    kind = _source_kind(config.source)
    images = _source_images(config, kind)
    video = check(config, workspace)
    folder = kind == "folder" and not config.preview_frames
    if folder:
        names = [config.output / n for n in _output_names(images)]
    else:
        names = [config.output] * len(images)
    model = load_reenactor(workspace, config.model, config.device)
    finder = FaceFinder(config.backend, device=config.device, sink=sink)
    started = time.monotonic()
    portraits = _portraits(config, images, names, finder, model, sink)
    sink(
        Started(
            stage="reenact",
            detail={
                "model": model.name,
                "step": model.step,
                "size": model.size,
                "device": str(model.device),
                "source": printable(config.source),
                "portraits": len(portraits),
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
    plan_progress = _Progress(sink, "plan", video.frames)
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
    if not any(s.box is not None for s in shots):
        raise NoFacesError(
            f"no face found in {total} frames of {printable(config.driving)}",
            "the driving video must show a face the face finder can see",
        )
    if len(shots) > 1:
        sink(
            Info(message=f"{len(shots)} shots in the driving video, each cropped with its own box")
        )
    refs = _references(config, shots, portraits)
    start_frame = next(refs[0, n] for n, s in enumerate(shots) if s.box is not None) if refs else 0
    try:
        if config.preview_frames:
            shown = _preview(config, video, shots, portraits, refs, model, cancel)
            frames, without_face, audio = shown, 0, 0
        else:
            far = {
                index: shots[n].box
                for (_, n), index in refs.items()
                if config.relative and index - shots[n].start > _WAIT_FOR_REFERENCE
            }
            kp_at: dict[int, KP] = {}
            if far:
                sink(Info(message=f"reading {len(far)} reference frame(s) ahead"))
                crops = _fetch_crops(video, far, model.size, cancel)  # type: ignore[arg-type]
                for index, crop in crops.items():
                    kp_at[index] = model.keypoints(crop[None])
            frames, without_face, audio = _run_video(
                config, video, shots, portraits, refs, kp_at, model, folder, sink, cancel
            )
    except OSError as exc:  # PyAV's write errors are OSErrors too
        if exc.errno not in _DISK_FULL:
            raise
        raise WorkspaceError(
            f"cannot write {printable(config.output)}: disk full ({exc.strerror})",
            "free disk space and run again; an older OUTPUT there is kept as it was",
        ) from None
    seconds = time.monotonic() - started
    if video.undecodable:
        sink(
            Warning(
                message=f"{video.undecodable} frame(s) of {config.driving} could not be decoded",
                hint="they were skipped; the output has that many fewer frames",
            )
        )
    outputs = [printable(config.output)] if not folder else [printable(p.output) for p in portraits]
    result = ReenactResult(
        outputs=outputs,
        frames=frames,
        shots=len(shots),
        frames_without_face=without_face,
        start_frame=start_frame,
        seconds=round(seconds, 3),
        frames_per_s=round(frames / seconds, 3) if seconds > 0 else 0.0,
        audio_streams=audio,
        preview=printable(config.output) if config.preview_frames else None,
    )
    sink(Finished(stage="reenact", result=result.model_dump(mode="json")))
    return result
