"""What reenact checks before a model loads: portraits, driving video, OUTPUT, the model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.config import ReenactConfig
from engine.convert.video_io import FORMATS, InputVideo, open_input
from engine.errors import BadInputError, NotFoundError, WorkspaceError
from engine.media.images import is_image_path
from engine.media.paths import check_path
from engine.media.video import is_video_path
from engine.workspace import Workspace


@dataclass
class Inputs:
    """The portraits (one, or a folder's), where each one's video goes, and the driving range."""

    images: list[Path]
    outputs: list[Path]  # one per image; all config.output unless SOURCE is a folder
    folder: bool  # OUTPUT is a folder of videos, one per portrait
    video: InputVideo


def _source_images(source: Path) -> tuple[list[Path], bool]:
    """The portraits SOURCE names, and whether it is a folder."""
    if not check_path(source, "image"):
        if is_video_path(source):  # its first frame is the portrait
            return [source], False
        if not is_image_path(source):
            raise BadInputError(
                f"{source.name} is not a picture (SOURCE is a portrait image or a folder of them)",
                "give a .jpg, .png or .webp portrait (or a video: its first frame)",
            )
        return [source], False
    from engine.media.sources import _natural_key

    try:
        entries = sorted(source.iterdir(), key=_natural_key)
    except OSError as exc:
        raise BadInputError(f"cannot list {source} ({exc.strerror})", "check it") from None
    images = [p for p in entries if p.is_file() and is_image_path(p)]
    if not images:
        raise BadInputError(f"{source} holds no images", "give a folder of portraits")
    return images, True


def output_names(images: list[Path]) -> list[str]:
    """One video name per portrait of a folder: NAME.mp4, with the suffix kept where two
    portraits share a name (a.jpg and a.png)."""
    stems = [p.stem for p in images]
    return [
        f"{p.stem}.mp4" if stems.count(p.stem) == 1 else f"{p.stem}-{p.suffix[1:]}.mp4"
        for p in images
    ]


def _check_output(config: ReenactConfig, folder: bool) -> None:
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
    elif folder:
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


def check(config: ReenactConfig, workspace: Workspace) -> Inputs:
    """Everything that can be checked before a model loads, each failure one SwapdeckError
    (a detached job checks this first, so a typo fails in the terminal, not in the job's
    log)."""
    images, folder = _source_images(config.source)
    if check_path(config.driving, "video"):
        raise BadInputError(f"DRIVING {config.driving} is a folder", "give one video")
    video = open_input(config.driving, config.start, config.end)
    _check_output(config, folder)
    _check_model(workspace, config.model)
    if folder and not config.preview_frames:
        return Inputs(images, [config.output / n for n in output_names(images)], True, video)
    return Inputs(images, [config.output] * len(images), False, video)
