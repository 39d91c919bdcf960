"""`--mask occlusion`: what covers a face (a hand, a microphone) stays in front of it.

Each face is cut the way the occlusion model's training faces were cut (its own
coverage and crop size, which need not be the swap model's), the model says which
pixels are the face itself, and that mask is warped into the swap crop, where the
swapper intersects it with the landmark hull. Blending then erodes and feathers the
result as it does any mask, and leaves pixels where it is 0 untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.faces.align import alignment_matrix, invert, warp_face
from engine.train.families.occlusion.inference import OcclusionModel, occlusion_for
from engine.train.registry import ModelSettingsBase
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace


def own_or_faceset(
    workspace: Workspace, settings: ModelSettingsBase, faceset: str | None
) -> str | None:
    """The occlusion model a swap model masks with unless told: its own (masked training's
    `occlusion_model`), else the one trained on `faceset`, the replaced side's."""
    return getattr(settings, "occlusion_model", "") or occlusion_for(workspace, faceset)


def auto_occlusion(
    workspace: Workspace, model: str, direction: str
) -> tuple[str | None, str | None]:
    """(the occlusion model `--mask auto` takes for `model` converting `direction`, the
    faceset it looked for), from model.toml alone: nothing is loaded."""
    settings = load_settings(ModelPaths(workspace.model_dir(model)).toml)
    side = "a" if direction == "a-to-b" else "b"
    faceset = getattr(settings, f"faceset_{side}", None)
    return own_or_faceset(workspace, settings, faceset), faceset


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine `outer` after `inner` (points go through `inner` first)."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2:]) + outer[:, 2:]])


def confident_face(predicted: np.ndarray) -> np.ndarray:
    """P(face) as a blend weight: 0 up to one half, rising to 255 at certainty.

    A pixel the model is unsure of is left as it was; a soft 0.3 would still paint
    30% of the swapped face over a hand.
    """
    return np.clip((predicted.astype(np.int32) - 128) * 255 // 127, 0, 255).astype(np.uint8)


class OcclusionMasker:
    """Face masks from an occlusion model, in the coordinates of the swap crops."""

    def __init__(self, model: OcclusionModel, faceset: str | None = None) -> None:
        self.model = model
        geometry = model.settings.geometry
        found = geometry.get(faceset or "") or next(iter(geometry.values()), None)
        # Cut at the training faces' crop size and shrink, as training faces were made.
        self.crop_size = max(found.crop_size if found is not None else 0, model.size)
        self.coverage = found.coverage if found is not None else model.coverage

    @property
    def name(self) -> str:
        return self.model.name

    def cut(self, image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The crop the occlusion model looks at, and its frame -> crop matrix."""
        size, big = self.model.size, self.crop_size
        matrix = alignment_matrix(landmarks, big, self.coverage)
        crop = warp_face(image, matrix, big)
        if big != size:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            matrix = matrix * (size / big)
        return crop, matrix

    def masks(
        self, cuts: list[tuple[np.ndarray, np.ndarray]], to_swap: list[np.ndarray], size: int
    ) -> np.ndarray:
        """`cut`'s (crop, matrix) per face and each face's frame -> swap crop matrix →
        (N, size, size) uint8 in the swap crops: 255 where the face itself shows, 0 where
        something covers it (or off the occlusion crop)."""
        predicted = self.model.predict(np.stack([crop for crop, _ in cuts]))
        out = np.empty((len(cuts), size, size), np.uint8)
        for i, ((_, to_occlusion), swap) in enumerate(zip(cuts, to_swap, strict=True)):
            # occlusion crop -> frame -> swap crop
            matrix = compose(swap, invert(to_occlusion))
            out[i] = cv2.warpAffine(
                confident_face(predicted[i]),
                matrix,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        return out
