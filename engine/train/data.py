"""Training data: a faceset loaded once as uint8 tensors at the model's size.

Each face comes with two mask channels: the landmark-hull face mask stored at
extraction, and the eyes+mouth region drawn from its landmarks (the loss
weights those more), and its head pose (yaw, pitch, roll in degrees). A few faces
are held out for previews.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.errors import BadInputError, CorruptError
from engine.faces.align import transform_points
from engine.faceset import FaceRecord, Faceset
from engine.train.registry import CropGeometry
from engine.workspace import Workspace

MIN_FACES = 25
_EYES = (slice(36, 42), slice(42, 48))
_MOUTH = slice(48, 60)


@dataclass
class FaceData:
    name: str
    faces: torch.Tensor  # (N, 3, S, S) uint8, training faces
    masks: torch.Tensor  # (N, 2, S, S) uint8: face hull, eyes+mouth
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


def load_faces(workspace: Workspace, name: str, size: int, held_out: int = 4) -> FaceData:
    """Load faceset `name` at `size` px; refuses facesets too small or too low-res."""
    folder = workspace.existing_faceset_dir(name)
    with Faceset.open(folder) as faceset:
        stored = faceset.size
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
