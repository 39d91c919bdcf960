"""Label masks a user drew: PNGs named like a faceset's faces, kept in its manifest.

A label says which pixels of an aligned face are the face itself (255) and which are
covered or not face (0). Training takes it over the synthesised target for that face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import BadInputError
from engine.events import Finished, Progress, Sink, Started, Warning, null_sink
from engine.faceset import Faceset
from engine.media.images import open_image
from engine.media.paths import check_path
from engine.results import LabelsResult
from engine.workspace import Workspace

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


def _gray(img: Image.Image) -> np.ndarray:
    """The image's mask channel in 0..255: its alpha where it has a varying one (a cut-out),
    else its luminance (a black-and-white drawing)."""
    if "A" in img.getbands() or "transparency" in img.info:
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if alpha.min() < 255:
            return alpha
    if img.mode in _SIXTEEN_BIT:
        values = np.asarray(img).astype(np.float64)
        return values / (257.0 if values.max() > 255 else 1.0)
    return np.asarray(img.convert("L"))


def read_label(path: Path, size: int) -> tuple[np.ndarray, bool]:
    """A label image as a (size, size) uint8 mask of 0 and 255, binarised at 128 and
    resized (nearest) when its size differs; also whether it was resized."""
    try:
        with open_image(path) as img:
            img.load()
            gray = _gray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise BadInputError(
            f"label {path} is not a readable PNG ({why})",
            "replace it, or move it out of the folder",
        ) from None
    mask = np.where(gray >= 128, 255, 0).astype(np.uint8)
    if mask.shape == (size, size):
        return mask, False
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST), True


def encode_label(mask: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", mask)
    if not ok:
        raise ValueError("label encoding failed")
    return data.tobytes()


def _pngs(folder: Path) -> list[Path]:
    if not check_path(folder, "folder"):
        raise BadInputError(f"{folder} is a file, not a folder", "give the folder of label PNGs")
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    except OSError as exc:
        raise BadInputError(
            f"cannot list {folder} ({exc.strerror})", "check its permissions"
        ) from None


def _png_count(count: int) -> str:
    return f"{count} PNG" + ("s" if count != 1 else "")


def _finish(
    faceset: Faceset, name: str, sink: Sink, folder: Path | None, **counts: object
) -> LabelsResult:
    labelled = faceset.labelled_count()
    result = LabelsResult(
        faceset=name,
        folder=None if folder is None else str(folder),
        labelled=labelled,
        unlabelled=faceset.count() - labelled,
        **counts,  # type: ignore[arg-type]
    )
    sink(Finished(stage="labels", result=result.model_dump(mode="json")))
    return result


def import_labels(
    workspace: Workspace, name: str, folder: Path, sink: Sink = null_sink, replace: bool = False
) -> LabelsResult:
    """Store each PNG of `folder` named like a face of faceset `name` as that face's label.

    All labels are read before any is written, and written in one transaction: a
    refusal (no PNG named like a face, an unreadable PNG) leaves the faceset as it was.
    `replace` also clears the labels of faces the folder has none for.
    """
    folder = Path(folder)
    pngs = _pngs(folder)
    with Faceset.open(workspace.existing_faceset_dir(name)) as faceset:
        faces = list(faceset.faces())
        ids = {face.file: int(face.id or 0) for face in faces}
        had = {int(face.id or 0) for face in faces if face.label is not None}
        matched = [p for p in pngs if p.name in ids]
        unmatched = [p.name for p in pngs if p.name not in ids]
        if not matched:
            example = f" (e.g. {min(ids)})" if ids else ""
            found = f"none of its {len(pngs)} PNGs is" if pngs else "it holds no PNG"
            raise BadInputError(
                f"no label in {folder} for faceset {name}: {found} named like a face",
                f"name each label PNG after its face's file in {faceset.faces_dir}{example}",
            )
        sink(Started(stage="labels", detail={"faceset": name, "folder": str(folder)}))
        labels: dict[int, bytes | None] = dict.fromkeys(ids.values()) if replace else {}
        resized = 0
        for done, path in enumerate(matched, 1):
            mask, changed = read_label(path, faceset.size)
            resized += changed
            labels[ids[path.name]] = encode_label(mask)
            if done % 100 == 0 or done == len(matched):
                sink(Progress(stage="labels", done=done, total=len(matched), unit="files"))
        if unmatched:
            shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
            sink(
                Warning(
                    message=f"{_png_count(len(unmatched))} in {folder} named like no face "
                    f"of faceset {name}: {shown}",
                    hint="a label takes its face's file name, as in faces/",
                )
            )
        faceset.set_labels(labels.items())
        return _finish(
            faceset,
            name,
            sink,
            folder,
            matched=len(matched),
            resized=resized,
            unmatched=unmatched,
            cleared=sum(1 for i, label in labels.items() if label is None and i in had),
        )


def clear_labels(workspace: Workspace, name: str, sink: Sink = null_sink) -> LabelsResult:
    """Remove every label mask of faceset `name` (in one transaction)."""
    with Faceset.open(workspace.existing_faceset_dir(name)) as faceset:
        sink(Started(stage="labels", detail={"faceset": name, "clear": True}))
        ids = [int(face.id or 0) for face in faceset.faces() if face.label is not None]
        cleared = faceset.set_labels((face_id, None) for face_id in ids)
        return _finish(
            faceset, name, sink, None, matched=0, resized=0, unmatched=[], cleared=cleared
        )
