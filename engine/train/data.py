"""Training data: a faceset loaded once as uint8 tensors at the model's size.

Each face comes with two mask channels: the landmark-hull face mask stored at
extraction, and the eyes+mouth region drawn from its landmarks (the loss
weights those more), and its head pose (yaw, pitch, roll in degrees). A few faces
are held out for previews.

For masked training a third channel says what is *visible*: 0 where something
covers the face, from the face's imported label where it has one, else from an
occlusion model's prediction. Without either it is left out, so plain training
pays nothing for it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from engine.errors import BadInputError, CorruptError
from engine.faces.align import transform_points
from engine.faceset import FaceRecord, Faceset
from engine.train.registry import CropGeometry
from engine.workspace import Workspace

if TYPE_CHECKING:
    from engine.train.families.occlusion.inference import OcclusionModel

MIN_FACES = 25
_EYES = (slice(36, 42), slice(42, 48))
_MOUTH = slice(48, 60)


@dataclass
class FaceData:
    name: str
    faces: torch.Tensor  # (N, 3, S, S) uint8, training faces
    masks: torch.Tensor  # (N, 2|3, S, S) uint8: face hull, eyes+mouth (, visible)
    held_faces: torch.Tensor  # (H, 3, S, S) uint8, kept out of training for previews
    held_masks: torch.Tensor
    poses: torch.Tensor  # (N, 3) float32: yaw, pitch, roll in degrees, as extract measured
    held_poses: torch.Tensor  # (H, 3)

    def __len__(self) -> int:
        return int(self.faces.shape[0])

    def to(self, device: torch.device) -> FaceData:
        return FaceData(
            self.name,
            self.faces.to(device),
            self.masks.to(device),
            self.held_faces.to(device),
            self.held_masks.to(device),
            self.poses.to(device),
            self.held_poses.to(device),
        )


def _region_mask(record: FaceRecord, stored: int, size: int) -> np.ndarray:
    pts = transform_points(record.landmarks.astype(np.float64), record.matrix) * (size / stored)
    region = np.zeros((size, size), np.uint8)
    for part in (*_EYES, _MOUTH):
        hull = cv2.convexHull(np.round(pts[part]).astype(np.int32))
        cv2.fillConvexPoly(region, hull, 255)
    # Grow the regions a little: the lids and lips around them matter too.
    grow = max(1, size // 32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(region, kernel)


def _load_one(
    faceset: Faceset, record: FaceRecord, stored: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    path = faceset.faces_dir / record.file
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CorruptError(f"face image {path} cannot be read", "prune it or extract again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if record.mask:
        hull = cv2.imdecode(np.frombuffer(record.mask, np.uint8), cv2.IMREAD_GRAYSCALE)
    else:
        hull = np.full(rgb.shape[:2], 255, np.uint8)
    if rgb.shape[0] != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        hull = cv2.resize(hull, (size, size), interpolation=cv2.INTER_AREA)
    region = _region_mask(record, stored, size)
    return rgb.transpose(2, 0, 1), np.stack([hull, region])


def load_faces(
    workspace: Workspace,
    name: str,
    size: int,
    held_out: int = 4,
    *,
    visibility: bool = False,
    occlusion: OcclusionModel | None = None,
) -> FaceData:
    """Load faceset `name` at `size` px; refuses facesets too small or too low-res.

    With `visibility`, the masks gain the visible channel (see the module's docstring)
    when a face has an imported label or `occlusion` is given.
    """
    folder = workspace.existing_faceset_dir(name)
    with Faceset.open(folder) as faceset:
        stored = faceset.size
        coverage = float(faceset.meta("coverage") or 0) or None
        if stored < size:
            raise BadInputError(
                f"faceset {name} was extracted at {stored} px, smaller than the model's {size} px",
                f"extract again with --size {size} or more, or choose a smaller model",
            )
        records = list(faceset.faces())
        if len(records) < MIN_FACES:
            raise BadInputError(
                f"faceset {name} has {len(records)} faces; training needs at least {MIN_FACES}",
                "extract more photos or video of that person into it",
            )
        with ThreadPoolExecutor(max_workers=4) as pool:
            loaded = list(pool.map(lambda r: _load_one(faceset, r, stored, size), records))
    faces = torch.from_numpy(np.stack([f for f, _ in loaded]))
    masks = torch.from_numpy(np.stack([m for _, m in loaded]))
    if visibility:
        masks = _with_visible(masks, faces, records, occlusion, coverage)
    poses = torch.tensor([[r.yaw, r.pitch, r.roll] for r in records], dtype=torch.float32)
    # Hold out evenly spaced faces, so previews show what training never saw.
    held = min(held_out, len(records) // 10) or 1
    held_idx = torch.linspace(0, len(records) - 1, held).round().long().unique()
    keep = torch.ones(len(records), dtype=torch.bool)
    keep[held_idx] = False
    return FaceData(
        name,
        faces[keep],
        masks[keep],
        faces[held_idx],
        masks[held_idx],
        poses[keep],
        poses[held_idx],
    )


def _with_visible(
    masks: torch.Tensor,
    faces: torch.Tensor,
    records: list[FaceRecord],
    occlusion: OcclusionModel | None,
    coverage: float | None,
) -> torch.Tensor:
    """`masks` with the visible channel, or as they are when nothing says what is covered.

    A face mask F (label or prediction: 255 = the face itself) says nothing outside the
    hull, where it is 0 anyway, so visible = 1 − hull·(1 − F): covered only inside it.
    """
    size = faces.shape[-1]
    labels = [_label(r, size) for r in records]
    unlabelled = [i for i, label in enumerate(labels) if label is None]
    if occlusion is None and len(unlabelled) == len(records):
        return masks
    face = np.full((len(records), size, size), 255, np.uint8)
    for i, label in enumerate(labels):
        if label is not None:
            face[i] = label
    if occlusion is not None and unlabelled:
        crops = faces[unlabelled].permute(0, 2, 3, 1).numpy()
        face[unlabelled] = predict_face(occlusion, crops, coverage)
    hull = masks[:, 0].int()
    covered = (hull * (255 - torch.from_numpy(face).int()) + 127) // 255
    return torch.cat([masks, (255 - covered).byte()[:, None]], dim=1)


def _label(record: FaceRecord, size: int) -> np.ndarray | None:
    """A face's imported label mask at `size` px (255 = face), or None."""
    data = getattr(record, "label", None)  # FaceRecord.label: faceset schema 2
    if not data:
        return None
    label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if label is None:
        raise CorruptError(
            f"the label mask of face {record.file} cannot be read",
            "import its label again, or clear it",
        )
    if label.shape != (size, size):
        label = cv2.resize(label, (size, size), interpolation=cv2.INTER_AREA)
    return label


def predict_face(
    occlusion: OcclusionModel, crops: np.ndarray, coverage: float | None
) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB crops cut at `coverage` → (N, S, S) uint8 face masks.

    Crops cut at another coverage than the occlusion model's are scaled about their
    centre (where alignment centres the face) to its framing and back; what falls
    outside its view is taken as uncovered.
    """
    ratio = occlusion.coverage / coverage if coverage else 1.0
    if abs(ratio - 1.0) < 1e-3:
        return occlusion.predict(crops)
    size = crops.shape[1]
    shift = (1.0 - ratio) * size / 2  # alignment centres the face at size / 2
    to_model = np.array([[ratio, 0.0, shift], [0.0, ratio, shift]])
    framed = np.stack([cv2.warpAffine(c, to_model, (size, size)) for c in crops])
    back = cv2.invertAffineTransform(to_model)
    return np.stack(
        [
            cv2.warpAffine(m, back, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=255)
            for m in occlusion.predict(framed)
        ]
    )


def faceset_geometry(workspace: Workspace, name: str) -> CropGeometry | None:
    """How faceset `name` cut its faces, or None when it is gone or says nothing."""
    folder = workspace.faceset_dir(name)
    if not (folder / "faceset.sqlite").exists():
        return None
    with Faceset.open(folder) as faceset:
        coverage, size = faceset.meta("coverage"), faceset.size
    if not coverage or not size:
        return None
    return CropGeometry(coverage=float(coverage), crop_size=size)
