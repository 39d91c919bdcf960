"""A faceset's masks drawn over its faces, as one PNG contact sheet to check by eye.

Each tile is one aligned face with its landmark hull outlined (green) and, inside the
hull, what covers the face tinted: red where the occlusion model says so, blue where
the face's imported label does (labels win, as in training, and such tiles are framed
in blue and marked "label"). With no occlusion model the sheet shows hulls and labels.
Imported-label faces come first, then faces evenly spaced over the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.errors import BadInputError, CorruptError
from engine.events import Finished, Progress, Saved, Sink, Started, null_sink
from engine.faceset import FaceRecord, Faceset
from engine.results import MaskSheetResult
from engine.workspace import DIR_MODE, Workspace, atomic_write_bytes, disk_full_refused

if TYPE_CHECKING:
    from engine.train.families.occlusion.inference import OcclusionModel

STAGE = "masks"
SHEET_NAME = "masks.png"  # in the faceset's folder unless -o says otherwise
TILE = 128  # px, or the faceset's crop size when smaller
COLUMNS = 8
GAP = 2
HEADER = 18  # px of the legend line above the tiles
HULL_RGB = (40, 220, 60)
MODEL_RGB = (255, 40, 40)
LABEL_RGB = (40, 110, 255)
_TINT = 0.55  # how much of a covered pixel the tint takes
_BACKGROUND = 24


def tile_origin(index: int, columns: int, tile: int) -> tuple[int, int]:
    """(x, y) of the top-left pixel of tile `index` on a sheet of `columns` columns."""
    row, col = divmod(index, columns)
    return GAP + col * (tile + GAP), HEADER + GAP + row * (tile + GAP)


def mask_sheet(
    workspace: Workspace,
    name: str,
    output: Path | None = None,
    model: str | None = None,
    count: int = 32,
    sink: Sink = null_sink,
    device: str = "cpu",
    columns: int = COLUMNS,
) -> MaskSheetResult:
    """Write the mask contact sheet of faceset `name` (at most `count` faces, `columns` a
    row) to `output` (default: the faceset's masks.png), atomically. `model` names the
    occlusion model; None: the one that covers this faceset (`occlusion_for`), if any."""
    if count < 1:
        raise BadInputError(f"--count must be at least 1, got {count}", "e.g. --count 32")
    if output is not None and output.suffix.lower() != ".png":
        raise BadInputError(f"the mask sheet is a PNG, not {output.name}", "end -o with .png")
    folder = workspace.existing_faceset_dir(name)
    occlusion = _occlusion(workspace, name, model, device)
    with Faceset.open(folder) as faceset:
        records = _chosen(list(faceset.faces()), count)
        stored = faceset.size
        coverage = float(faceset.meta("coverage") or 0) or None
        if not records:
            raise BadInputError(f"faceset {name} has no faces", "extract some into it first")
        tile = min(TILE, stored)
        sink(
            Started(
                stage=STAGE,
                detail={"faceset": name, "faces": len(records), "model": _name(occlusion)},
            )
        )
        crops = np.stack([_face(faceset, r, tile) for r in records])
    sink(Progress(stage=STAGE, done=len(records), total=len(records), unit="faces"))
    hulls = np.stack([_decode(r.mask, tile, r) if r.mask else _full(tile) for r in records])
    labels = [_decode(_label_of(r), tile, r) if _label_of(r) else None for r in records]
    predicted = _predicted(occlusion, crops, labels, coverage)
    tiles, covered, inside = [], 0, 0
    for i in range(len(records)):
        face_mask = labels[i] if labels[i] is not None else predicted[i]
        is_covered = _covered(hulls[i], face_mask)
        covered += int(is_covered.sum())
        inside += int((hulls[i] >= 128).sum())
        tint = LABEL_RGB if labels[i] is not None else MODEL_RGB
        tiles.append(_tile(crops[i], hulls[i], is_covered, tint, labels[i] is not None))
    columns = max(1, min(columns, len(tiles)))
    sheet = _sheet(tiles, columns, tile, _legend(name, occlusion))
    path = output if output is not None else folder / SHEET_NAME
    _write_png(sheet, path)
    sink(Saved(path=str(path), what="mask sheet"))
    result = MaskSheetResult(
        faceset=name,
        output=str(path),
        mask="occlusion" if occlusion is not None else "hull",
        mask_model=_name(occlusion),
        faces=[int(r.id or 0) for r in records],
        labelled=sum(label is not None for label in labels),
        columns=columns,
        tile_px=tile,
        covered_share=covered / inside if inside else 0.0,
    )
    sink(Finished(stage=STAGE, result=result.model_dump(mode="json")))
    return result


def _occlusion(
    workspace: Workspace, name: str, model: str | None, device: str
) -> OcclusionModel | None:
    """The occlusion model to draw with (loaded), or None for hull and labels only."""
    from engine.train.families.occlusion.inference import load_occlusion, occlusion_for

    chosen = model if model is not None else occlusion_for(workspace, name)
    return None if chosen is None else load_occlusion(workspace, chosen, device)


def _name(occlusion: OcclusionModel | None) -> str | None:
    return None if occlusion is None else occlusion.name


def _label_of(record: FaceRecord) -> bytes | None:
    return getattr(record, "label", None)  # FaceRecord.label: faceset schema 2


def _chosen(records: list[FaceRecord], count: int) -> list[FaceRecord]:
    """Labelled faces first (they are what a user checks), then evenly spaced others."""
    labelled = [r for r in records if _label_of(r)][:count]
    others = [r for r in records if not _label_of(r)]
    room = min(count - len(labelled), len(others))
    if room <= 0:
        return labelled
    picks = np.linspace(0, len(others) - 1, room).round().astype(int)
    return labelled + [others[i] for i in dict.fromkeys(picks.tolist())]


def _face(faceset: Faceset, record: FaceRecord, tile: int) -> np.ndarray:
    path = faceset.faces_dir / record.file
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CorruptError(f"face image {path} cannot be read", "prune it or extract again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (tile, tile), interpolation=cv2.INTER_AREA)


def _decode(data: bytes | None, tile: int, record: FaceRecord) -> np.ndarray:
    mask = cv2.imdecode(np.frombuffer(data or b"", np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise CorruptError(
            f"a mask of face {record.file} cannot be read", "extract or import it again"
        )
    return cv2.resize(mask, (tile, tile), interpolation=cv2.INTER_AREA)


def _full(tile: int) -> np.ndarray:
    return np.full((tile, tile), 255, np.uint8)


def _predicted(
    occlusion: OcclusionModel | None,
    crops: np.ndarray,
    labels: list[np.ndarray | None],
    coverage: float | None,
) -> list[np.ndarray | None]:
    """The occlusion model's face masks for the faces without a label (None for the rest)."""
    out: list[np.ndarray | None] = [None] * len(crops)
    todo = [i for i, label in enumerate(labels) if label is None]
    if occlusion is None or not todo:
        return out
    from engine.train.data import predict_face

    for i, mask in zip(todo, predict_face(occlusion, crops[todo], coverage), strict=True):
        out[i] = mask
    return out


def _covered(hull: np.ndarray, face_mask: np.ndarray | None) -> np.ndarray:
    """Pixels inside the hull that the face mask says are not the face."""
    if face_mask is None:
        return np.zeros(hull.shape, bool)
    return (hull >= 128) & (face_mask < 128)


def _tile(
    crop: np.ndarray, hull: np.ndarray, covered: np.ndarray, tint: tuple[int, int, int], label: bool
) -> np.ndarray:
    out = crop.copy()
    colour = np.array(tint, np.float32)
    out[covered] = (out[covered] * (1 - _TINT) + colour * _TINT).astype(np.uint8)
    contours, _ = cv2.findContours(
        (hull >= 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(out, contours, -1, HULL_RGB, 1)
    if label:
        cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), LABEL_RGB, 2)
        cv2.rectangle(out, (0, 0), (40, 16), LABEL_RGB, -1)
        cv2.putText(out, "label", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return out


def _legend(name: str, occlusion: OcclusionModel | None) -> str:
    if occlusion is None:
        return f"{name}: hull (green), no occlusion model; imported labels' cover (blue)"
    model = _name(occlusion)
    return f"{name}: hull (green), covered by {model} (red), by imported labels (blue)"


def _sheet(tiles: list[np.ndarray], columns: int, tile: int, legend: str) -> np.ndarray:
    rows = -(-len(tiles) // columns)
    width = GAP + columns * (tile + GAP)
    height = HEADER + GAP + rows * (tile + GAP)
    sheet = np.full((height, width, 3), _BACKGROUND, np.uint8)
    for i, image in enumerate(tiles):
        x, y = tile_origin(i, columns, tile)
        sheet[y : y + tile, x : x + tile] = image
    cv2.putText(sheet, legend, (GAP, HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230,) * 3, 1)
    return sheet


def _write_png(rgb: np.ndarray, path: Path) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("mask sheet encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    with disk_full_refused(path):
        atomic_write_bytes(path, data.tobytes())
