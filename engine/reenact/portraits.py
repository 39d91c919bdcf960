"""The portraits reenact moves, and the driving frames each shot's motion is measured from."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.convert.video_io import InputVideo, decode, open_input
from engine.errors import BadInputError, CancelledError, NoFacesError, NotFoundError
from engine.events import CancelToken, Sink, Warning
from engine.faces.finder import FaceFinder
from engine.media.images import is_image_path, read_image
from engine.media.paths import printable
from engine.reenact.crop import CropBox, Shot, portrait_face

if TYPE_CHECKING:  # torch is loaded with the model, not on import
    import torch

    from engine.train.families.fomm.inference import Reenactor

    KP = dict[str, torch.Tensor]


@dataclass
class Portrait:
    path: Path
    box: CropBox
    crop: np.ndarray  # (S, S, 3): what the model animates
    landmarks: np.ndarray  # (68, 2) in the box's unit square
    kp: KP  # its keypoints, (1, K, ...)
    output: Path  # where its video goes (the final name)
    image: np.ndarray | None = None  # the whole portrait, kept only to paste into
    last: np.ndarray | None = None  # the last frame written, held through faceless shots

    def still(self) -> np.ndarray:
        """The portrait unmoved, as its output shows it (whole when pasting back)."""
        return self.image if self.image is not None else self.crop

    def finish(self, frame: np.ndarray) -> np.ndarray:
        """An animated crop as the output shows it (pasted back when pasting back)."""
        return frame if self.image is None else self.box.paste(self.image, frame)


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def first_frame(path: Path, start: float | None) -> np.ndarray:
    """A video's first frame (from `start`): a video given as SOURCE stands for it."""
    for frame in decode(open_input(path, start, None)):
        return frame.rgb
    raise BadInputError(f"{path} contains no decodable frames", "check the file")


def _driving_face(
    image: np.ndarray, shots: list[Shot], finder: FaceFinder
) -> tuple[CropBox, np.ndarray]:
    """The driving video's own first frame as the portrait (the paper's reconstruction
    setting): cut with its shot's box, as the driving frames are, so output and driving
    crops compare pixel for pixel."""
    box = shots[0].box if shots else None
    faces = finder.find(image, video=False) if box is not None else []
    if box is None or not faces:
        raise NoFacesError(
            "no face in the driving video's first frame",
            "SOURCE is the driving video, so its first frame is the portrait: it must show a face",
        )
    return box, max(faces, key=lambda f: f.size).landmarks


def load_portraits(
    images: list[Path],
    outputs: list[Path],
    finder: FaceFinder,
    model: Reenactor,
    paste_back: bool,
    sink: Sink,
    driving: tuple[Path, float | None, list[Shot]] | None = None,
) -> list[Portrait]:
    """Each portrait cut square around its face, with its landmarks and keypoints; one
    without a face (or unreadable) is refused when alone, skipped with a warning in a
    folder (and refused when none is left). A video stands for its first frame; when it
    is the driving video (`driving`: its path, --start and planned shots), that frame is
    cut with its shot's box."""
    portraits = []
    for path, output in zip(images, outputs, strict=True):
        try:
            if is_image_path(path):
                image = read_image(path)
                box, landmarks = portrait_face(image, finder)
            elif driving is not None and same_file(path, driving[0]):
                image = first_frame(path, driving[1])
                box, landmarks = _driving_face(image, driving[2], finder)
            else:
                image = first_frame(path, None)
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
            Portrait(
                path=path,
                box=box,
                crop=crop,
                landmarks=box.from_frame(landmarks),
                kp=model.keypoints(crop[None]),
                output=output,
                image=np.ascontiguousarray(image) if paste_back else None,
            )
        )
    if not portraits:
        raise NoFacesError(
            f"no face found in any of the {len(images)} portraits",
            "use portraits showing one face each, upright and unhidden",
        )
    return portraits


def references(
    shots: list[Shot], portraits: list[Portrait], best: bool
) -> dict[tuple[int, int], int]:
    """(portrait, shot) → the driving frame that shot's motion is measured from: its first
    frame with a face, or (`best`) the one whose landmarks are nearest the portrait's."""
    from engine.train.families.fomm.motion import best_frame

    refs: dict[tuple[int, int], int] = {}
    for n, shot in enumerate(shots):
        if shot.box is None or not shot.landmarks:
            continue
        sampled = sorted(shot.landmarks)
        for p, portrait in enumerate(portraits):
            if best:
                at = best_frame(portrait.landmarks, [shot.landmarks[i] for i in sampled])
                refs[p, n] = sampled[at]
            else:
                refs[p, n] = sampled[0]
    return refs


def fetch_crops(
    video: InputVideo, wanted: dict[int, CropBox], size: int, cancel: CancelToken
) -> dict[int, np.ndarray]:
    """The driving frames `wanted` names, cut with their boxes; decoding stops after the last."""
    crops: dict[int, np.ndarray] = {}
    if not wanted:
        return crops
    last = max(wanted)
    # A copy: this pass must not add to the count of undecodable frames the main one keeps.
    for frame in decode(dataclasses.replace(video)):
        if cancel.cancelled:
            raise CancelledError("reenact cancelled; nothing was written", "run it again")
        if frame.index in wanted:
            crops[frame.index] = wanted[frame.index].cut(frame.rgb, size)
        if frame.index >= last:
            break
    return crops
