"""The convert stage: footage of A in, the same footage with B's face out, marked synthetic.

Video runs as a pipeline: a thread decodes ahead, the main thread finds faces,
steadies them over time and swaps them in batches, a small pool watermarks
finished frames, and a writer thread encodes them and copies the audio
across. Every queue between them is bounded, so memory stays flat however
long the video is. The output is written under a temporary name and renamed
into place only when complete.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import ConvertConfig
from engine.convert.blend import BlendSettings
from engine.convert.faces import IdentityFilter, ManifestFaces
from engine.convert.occlusion import OcclusionMasker, own_or_faceset
from engine.convert.smooth import Face, Frame, Smoother
from engine.convert.swap import FaceSwapper
from engine.convert.video_io import (
    FORMATS,
    DecodedFrame,
    MarkedWriter,
    VideoOutput,
    decode,
    open_input,
)
from engine.errors import (
    BadInputError,
    CancelledError,
    NoFacesError,
    NotFoundError,
    WorkspaceError,
)
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
from engine.faces.identity import Embedder, reference_embeddings
from engine.media.images import IMAGE_EXTS, is_image_path, read_image
from engine.media.paths import check_path, printable
from engine.media.prefetch import prefetch
from engine.media.shots import ShotCuts
from engine.media.video import is_video_path
from engine.results import ConvertPreviewResult, ConvertResult
from engine.train.families.occlusion.inference import load_occlusion
from engine.train.inference import TrainedModel, load_trained
from engine.workspace import (
    Workspace,
    atomic_folder,
    atomic_path,
    atomic_write_bytes,
    disk_full_refused,
)

_SWAP_FRAMES = 8  # frames swapped per model batch
_TMP_NAME_EXTRA = 14  # what tempfile adds to OUTPUT's name for the file written first


@dataclass
class _Setup:
    model: TrainedModel
    swapper: FaceSwapper
    finder: FaceFinder | None
    detail: dict[str, Any]
    # The faceset of the face being replaced that the model was trained on (None: none).
    faceset: str | None


def _check_output(config: ConvertConfig, kind: str) -> None:
    out, src = config.output, config.input
    parent = out.parent if str(out.parent) else Path(".")
    try:
        # The output is written under a temporary name ".NAME.xxxxxxxx.tmp" beside it.
        too_long = len(os.fsencode(out.name)) + _TMP_NAME_EXTRA > os.pathconf(parent, "PC_NAME_MAX")
        exists = out.exists()
        is_dir = parent.is_dir()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise BadInputError(f"folder {parent} does not exist", "create it first") from None
        raise BadInputError(
            f"cannot write {out} ({exc.strerror})", "choose a shorter, simpler OUTPUT path"
        ) from None
    if too_long:
        raise BadInputError(
            f"cannot write {out}: its name is too long for this file system",
            "choose a shorter OUTPUT name",
        )
    if out.resolve() == src.resolve():
        raise BadInputError("OUTPUT is the INPUT", "write the result somewhere else")
    if exists and not config.overwrite:
        raise BadInputError(f"{out} already exists", "add --overwrite to replace it")
    if not is_dir:
        raise BadInputError(f"folder {parent} does not exist", "create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WorkspaceError(f"cannot write to folder {parent}", "choose a folder you can write")
    suffix = out.suffix.lower()
    if config.preview_frames:
        if suffix != ".png":
            raise BadInputError("with --preview-frames, OUTPUT is a .png", "name it e.g. tune.png")
    elif kind == "video" and suffix not in FORMATS:
        raise BadInputError(
            f"cannot tell the video format from {out.name}",
            f"end OUTPUT with one of {', '.join(sorted(FORMATS))}",
        )
    elif kind == "image" and suffix not in IMAGE_EXTS:
        raise BadInputError(f"{out.name} is not an image name", "end it with .png or .jpg")


def _input_kind(path: Path) -> str:
    if check_path(path, "video or image"):
        return "folder"
    if is_image_path(path):
        return "image"
    # Anything else is tried as a video: containers do not always have telling names.
    return "video"


def _setup(config: ConvertConfig, workspace: Workspace, sink: Sink, video: bool) -> _Setup:
    model = load_trained(workspace, config.model, config.device)
    model.check_direction(config.direction)
    source_side, identity = ("a", "b") if config.direction == "a-to-b" else ("b", "a")
    # The side being replaced: a-to-b puts B's face where A's was, so A's faceset. A
    # per-target network may have none (it learnt from anyone's faces): faces are then
    # found on the fly, or taken from the faceset --faceset names.
    source: str | None = getattr(model.settings, f"faceset_{source_side}", None)
    # Cut faces as the model's training faces were cut (model.toml keeps how).
    geometry = model.geometry(source_side)
    coverage, crop_size = geometry.coverage, geometry.crop_size
    mask, occlusion = choose_mask(config, workspace, model, source)
    finder = None
    embedder = None
    references = np.zeros((0, 128), np.float32)
    if config.references or not video or config.start is not None:
        finder = FaceFinder(config.backend, device=config.device, sink=sink)
    if config.references:
        embedder = Embedder()
        assert finder is not None
        references = reference_embeddings(config.references, finder.backend, embedder)
    blend = BlendSettings(
        erode=config.erode, blur=config.blur, color=config.color, seamless=config.seamless
    )
    swapper = FaceSwapper(
        model,
        identity,
        crop_size,
        coverage,
        mask == "learned",
        blend,
        IdentityFilter(references, config.threshold, embedder),
        config.batch_size,
        occlusion,
    )
    detail = {
        "model": model.name,
        "step": model.step,
        "direction": config.direction,
        "mask": mask,
        **({"mask_model": occlusion.name} if occlusion is not None else {}),
        "color": config.color,
        "device": str(model.device),
        "input": printable(config.input),
        "output": printable(config.output),
    }
    return _Setup(model, swapper, finder, detail, source)


def choose_mask(
    config: ConvertConfig, workspace: Workspace, model: TrainedModel, source: str | None
) -> tuple[str, OcclusionMasker | None]:
    """Which mask convert uses, and the occlusion model behind it (None: none).

    The occlusion model is the one --mask-model names, else the swap model's own
    (its `occlusion_model` option), else the one trained on the faceset being replaced.
    """
    mask = config.mask
    if config.mask_model is not None and mask not in ("occlusion", "auto"):
        raise BadInputError(
            f"--mask-model names an occlusion model; --mask {mask} uses none",
            "use --mask occlusion with it, or leave out --mask-model",
        )
    name = None
    if mask in ("occlusion", "auto"):
        name = config.mask_model or own_or_faceset(workspace, model.settings, source)
    if mask == "occlusion" and not name:
        covers = f"faceset {source}" if source else "the person being replaced"
        raise NotFoundError(
            f"no occlusion model covers {covers} (model {model.name} names none either)",
            f"train one: swapdeck train --family occlusion -w {printable(workspace.root)} "
            f"-m NAME --inputs {source or 'FACESET'}, or name one with --mask-model",
        )
    if name:
        occlusion = load_occlusion(workspace, name, config.device)
        return "occlusion", OcclusionMasker(occlusion, source)
    if mask == "auto":
        mask = "learned" if model.learns_mask else "hull"
    if mask == "learned" and not model.learns_mask:
        raise BadInputError(
            f"model {model.name} does not learn masks", "use --mask hull (or --mask auto)"
        )
    return mask, None


# ---- video ------------------------------------------------------------------------------


def _found_faces(
    frames: Iterator[DecodedFrame], setup: _Setup, manifest: ManifestFaces | None
) -> Iterator[Frame]:
    """Each decoded frame with its faces, their tracks, and whether it starts a new shot
    (nothing is smoothed or filled across a hard cut)."""
    if manifest is not None:
        cuts = ShotCuts()
        for frame in frames:
            faces = manifest.faces(frame.index)
            yield Frame(frame.index, frame, faces, cut=cuts.step(frame.rgb))
        return
    assert setup.finder is not None
    # Found as extract finds them; the finder's tracker notices the cuts (they end its tracks).
    for found in setup.finder.stream(((f.index, f.rgb, f) for f in frames), video=True):
        faces = [
            Face(f.landmarks, track=None if f.track is None else f.track.id) for f in found.faces
        ]
        yield Frame(found.index, found.payload, faces, cut=found.cut)


def _convert_video(
    config: ConvertConfig, workspace: Workspace, sink: Sink, cancel: CancelToken
) -> ConvertResult:
    video = open_input(config.input, config.start, config.end)
    manifest = None
    if config.faceset is not None:  # checked before the model loads: a typo fails at once
        if config.start:
            raise BadInputError(
                "--faceset takes the faces of the whole video, not from --start",
                "leave out --start, or --faceset to find the faces on the fly",
            )
        manifest = ManifestFaces.find(workspace, config.input, config.faceset, required=True)
    try:
        setup = _setup(config, workspace, sink, video=True)
        if manifest is None and not config.start and setup.faceset is not None:
            manifest = ManifestFaces.find(workspace, config.input, setup.faceset)
    except BaseException:
        if manifest is not None:
            manifest.close()
        raise
    if manifest is None and setup.finder is None:
        setup.finder = FaceFinder(config.backend, device=config.device, sink=sink)
    setup.detail.update(
        frames=video.frames,
        faces_from=f"faceset {manifest.name}" if manifest else "found on the fly",
    )
    sink(Started(stage="convert", detail=setup.detail))
    if manifest is None:
        _hint_covering_facesets(config, workspace, sink, setup.faceset)
    if video.width % 2 or video.height % 2:
        sink(Info(message=f"odd frame size {video.width}x{video.height}: encoding H.264 4:4:4"))
    progress = FrameProgress(sink, "convert", video.frames or None)
    swapper = setup.swapper
    smoother = Smoother(config.smooth)
    started = time.monotonic()
    try:
        with atomic_path(config.output) as tmp:
            output = VideoOutput(tmp, FORMATS[config.output.suffix.lower()], video)
            writer = MarkedWriter(output)
            try:
                pending: list[Frame] = []

                def swap_and_write(ready: list[Frame], final: bool = False) -> None:
                    pending.extend(ready)
                    if len(pending) < _SWAP_FRAMES and not final:
                        return
                    swapper.swap([(f.payload.rgb, f.faces) for f in pending])
                    for f in pending:
                        writer.put(f.payload.rgb, f.payload.pts)
                    pending.clear()
                    progress(swapper.tally.frames, {"faces_swapped": swapper.tally.faces_swapped})

                frames = prefetch(decode(video), depth=4)
                for frame in _found_faces(frames, setup, manifest):
                    if cancel.cancelled:
                        raise CancelledError(
                            f"convert cancelled after {swapper.tally.frames} frames; "
                            f"nothing was written to {config.output}",
                            "run it again",
                        )
                    swap_and_write(smoother.push(frame))
                swap_and_write(smoother.flush(), final=True)
                writer.finish()
                output.close()
            except BaseException:
                writer.abort()
                output.abort()
                raise
    finally:
        if manifest is not None:
            manifest.close()
    progress(swapper.tally.frames, {"faces_swapped": swapper.tally.faces_swapped}, force=True)
    return _finish(config, sink, swapper, started, video.undecodable, audio=output.audio_streams)


def _hint_covering_facesets(
    config: ConvertConfig, workspace: Workspace, sink: Sink, model_faceset: str | None
) -> None:
    """Say which facesets of this video were passed over: they may hold other people."""
    if config.start:
        return
    others = [n for n in ManifestFaces.covering(workspace, config.input) if n != model_faceset]
    if others:
        trained = (
            f"was trained on faceset {model_faceset}, which does not cover this video"
            if model_faceset is not None
            else "names no faceset of the person being replaced"
        )
        sink(
            Info(
                message=f"faces are found on the fly: model {config.model} {trained}; "
                f"--faceset {others[0]} would take them from {', '.join(others)}"
            )
        )


def _finish(
    config: ConvertConfig,
    sink: Sink,
    swapper: FaceSwapper,
    started: float,
    undecodable: int,
    audio: int | None = None,
) -> ConvertResult:
    tally = swapper.tally
    seconds = time.monotonic() - started
    if undecodable:
        sink(
            Warning(
                message=f"{undecodable} frame(s) of {config.input} could not be decoded",
                hint="they were skipped; the output has that many fewer frames",
            )
        )
    if tally.faces_swapped == 0:
        # The output is written (marked), but a run that changed nothing is no success.
        not_chosen = f", {tally.faces_kept} not matching --reference" if config.references else ""
        raise NoFacesError(
            f"no face was swapped in {tally.frames} frames of {printable(config.input)} "
            f"({tally.frames_without_face} without a face{not_chosen})",
            f"{printable(config.output)} was written anyway, marked, but shows the input "
            "unchanged; "
            + (
                "check --reference and --threshold"
                if tally.faces_kept
                else "check that INPUT shows faces the face finder can see"
            ),
        )
    result = ConvertResult(
        frames=tally.frames,
        faces_swapped=tally.faces_swapped,
        faces_not_chosen=tally.faces_kept,
        frames_without_face=tally.frames_without_face,
        undecodable_frames=undecodable,
        output=printable(config.output),
        seconds=round(seconds, 3),
        frames_per_s=round(tally.frames / seconds, 3) if seconds > 0 else 0.0,
        audio_streams=audio,  # left out of the JSON when converting images
        mask=swapper.mask,
        mask_model=swapper.mask_model,
    )
    sink(Finished(stage="convert", result=result.model_dump(mode="json")))
    return result


# ---- images -----------------------------------------------------------------------------


def _image_items(config: ConvertConfig, kind: str) -> list[Path]:
    if kind == "image":
        return [config.input]
    from engine.media.sources import _natural_key

    try:
        entries = sorted(config.input.iterdir(), key=_natural_key)
    except OSError as exc:
        raise BadInputError(f"cannot list {config.input} ({exc.strerror})", "check it") from None
    images = [p for p in entries if p.is_file() and is_image_path(p)]
    if not images:
        raise BadInputError(f"{config.input} holds no images", "give a folder of photos")
    return images


def _swap_image(setup: _Setup, image: np.ndarray) -> np.ndarray:
    assert setup.finder is not None
    image = np.array(image)  # a writable copy: decoders may hand out read-only buffers
    setup.finder.reset()
    faces = [Face(f.landmarks, chain=i) for i, f in enumerate(setup.finder.find(image, False))]
    setup.swapper.chooser.reset()  # chains are per image here
    setup.swapper.swap([(image, faces)])
    return image


def _convert_images(
    config: ConvertConfig, workspace: Workspace, sink: Sink, cancel: CancelToken, kind: str
) -> ConvertResult:
    from engine.provenance import encode_image, mark_frame

    if config.faceset is not None:
        raise BadInputError(
            "--faceset takes the faces of a video; INPUT is images",
            "leave out --faceset: faces in images are found on the fly",
        )
    items = _image_items(config, kind)
    setup = _setup(config, workspace, sink, video=False)
    setup.detail.update(frames=len(items), faces_from="found on the fly")
    sink(Started(stage="convert", detail=setup.detail))
    progress = FrameProgress(sink, "convert", len(items))
    started = time.monotonic()
    bad = 0

    def converted() -> Iterator[tuple[Path, bytes]]:
        nonlocal bad
        for path in items:
            if cancel.cancelled:
                raise CancelledError(
                    f"convert cancelled; nothing was written to {config.output}", "run it again"
                )
            try:
                image = read_image(path)
            except (BadInputError, NotFoundError) as exc:
                if kind == "image":  # the one image asked for: no output is no success
                    raise
                bad += 1
                sink(Warning(message=exc.message, hint="skipped"))
                continue
            out = mark_frame(_swap_image(setup, image))
            suffix = config.output.suffix if kind == "image" else path.suffix
            yield path, encode_image(out, suffix)
            progress(
                setup.swapper.tally.frames, {"faces_swapped": setup.swapper.tally.faces_swapped}
            )
        if bad == len(items):
            raise BadInputError(
                f"none of the {bad} images in {config.input} could be read",
                "check the files; the warnings above say what is wrong with each",
            )

    if kind == "image":
        for _, data in converted():
            atomic_write_bytes(config.output, data)
    else:
        _write_folder(config, converted())
    progress(
        setup.swapper.tally.frames,
        {"faces_swapped": setup.swapper.tally.faces_swapped},
        force=True,
    )
    return _finish(config, sink, setup.swapper, started, bad)


def _write_folder(config: ConvertConfig, files: Iterator[tuple[Path, bytes]]) -> None:
    """Fill a hidden folder beside OUTPUT, then rename it into place."""
    with atomic_folder(config.output) as tmp:
        for path, data in files:
            (tmp / path.name).write_bytes(data)


# ---- preview ----------------------------------------------------------------------------


def _preview(
    config: ConvertConfig, workspace: Workspace, sink: Sink, cancel: CancelToken, kind: str
) -> ConvertPreviewResult:
    """`--preview-frames`: faces from the faceset the conversion would take them from."""
    from engine.convert.preview import render_preview

    manifest = None
    if config.faceset is not None:  # checked before the model loads: a typo fails at once
        if kind != "video":
            raise BadInputError(
                "--faceset takes the faces of a video; INPUT is images",
                "leave out --faceset: faces in images are found on the fly",
            )
        manifest = ManifestFaces.find(workspace, config.input, config.faceset, required=True)
    try:
        setup = _setup(config, workspace, sink, video=False)
        if manifest is None and kind == "video" and setup.faceset is not None:
            manifest = ManifestFaces.find(workspace, config.input, setup.faceset)
        return render_preview(config, setup.swapper, setup.finder, sink, kind, cancel, manifest)
    finally:
        if manifest is not None:
            manifest.close()


# ---- entry point ------------------------------------------------------------------------


def convert(
    config: ConvertConfig,
    workspace: Workspace,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> ConvertResult | ConvertPreviewResult:
    """Swap the faces in config.input into config.output; returns the Finished result.

    With `config.preview_frames`, only renders that many before/after frames into one
    image and returns a ConvertPreviewResult.
    """
    cancel = cancel or CancelToken()
    kind = _input_kind(config.input)
    if kind == "video" and not is_video_path(config.input):
        sink(Info(message=f"{config.input.name}: not a known video name, trying it as one"))
    _check_output(config, "image" if kind == "image" else kind)
    if config.preview_frames:
        return _preview(config, workspace, sink, cancel, kind)
    with disk_full_refused(config.output):
        if kind == "video":
            return _convert_video(config, workspace, sink, cancel)
        return _convert_images(config, workspace, sink, cancel, kind)
