"""Swapping the faces of a few frames at once: crop, model, mask, blend back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.convert.blend import BlendSettings, paste_face
from engine.convert.faces import IdentityFilter
from engine.convert.occlusion import OcclusionMasker
from engine.convert.smooth import Face
from engine.faces.align import alignment_matrix, transform_points, warp_face
from engine.faces.mask import hull_mask
from engine.train.inference import TrainedModel


@dataclass
class Tally:
    frames: int = 0
    faces_swapped: int = 0
    faces_kept: int = 0  # found but not the reference person
    frames_without_face: int = 0


@dataclass
class _Job:
    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray  # frame -> model-size crop
    crop: np.ndarray
    # The occlusion model's crop and its matrix, cut before any face of the frame is pasted.
    occlusion: tuple[np.ndarray, np.ndarray] | None = None


class FaceSwapper:
    """Crops faces the way the model's training faces were cut, and pastes its output back."""

    def __init__(
        self,
        model: TrainedModel,
        identity: str,
        crop_size: int,
        coverage: float,
        learned_mask: bool,
        blend: BlendSettings,
        chooser: IdentityFilter,
        batch_size: int,
        occlusion: OcclusionMasker | None = None,
    ) -> None:
        self.model = model
        self.identity = identity
        # Training faces were cut at the faceset's size and shrunk; cut the same way.
        self.crop_size = max(crop_size, model.size)
        self.coverage = coverage
        self.learned_mask = learned_mask
        self.blend = blend
        self.chooser = chooser
        self.batch_size = batch_size
        # With an occlusion model, what covers the face is cut out of the mask.
        self.occlusion = occlusion
        self.tally = Tally()

    @property
    def mask(self) -> str:
        """The mask it blends with: occlusion, learned or hull."""
        if self.occlusion is not None:
            return "occlusion"
        return "learned" if self.learned_mask else "hull"

    @property
    def mask_model(self) -> str | None:
        return self.occlusion.name if self.occlusion is not None else None

    def _job(self, image: np.ndarray, landmarks: np.ndarray) -> _Job:
        size, big = self.model.size, self.crop_size
        matrix = alignment_matrix(landmarks, big, self.coverage)
        crop = warp_face(image, matrix, big)
        if big != size:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            matrix = matrix * (size / big)
        cut = self.occlusion.cut(image, landmarks) if self.occlusion is not None else None
        return _Job(image, landmarks, matrix, crop, cut)

    def swap(self, frames: list[tuple[np.ndarray, list[Face]]]) -> None:
        """Swap, in place, the chosen faces of each (frame pixels, faces) pair."""
        jobs = []
        for image, faces in frames:
            self.tally.frames += 1
            if not faces:
                self.tally.frames_without_face += 1
            for face in faces:
                if not self.chooser.wanted(image, face.landmarks, face.chain):
                    self.tally.faces_kept += 1
                    continue
                landmarks = face.smoothed if face.smoothed is not None else face.landmarks
                jobs.append(self._job(image, landmarks))
        for start in range(0, len(jobs), self.batch_size):
            self._run(jobs[start : start + self.batch_size])

    def _run(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        faces, masks = self.model.swap(np.stack([j.crop for j in jobs]), self.identity)
        size = self.model.size
        visible = None
        if self.occlusion is not None:
            # Every job was cut for the occlusion model (see _job).
            cuts = [j.occlusion for j in jobs if j.occlusion is not None]
            visible = self.occlusion.masks(cuts, [j.matrix for j in jobs], size)
        for i, job in enumerate(jobs):
            if self.learned_mask and masks is not None:
                mask = masks[i]
            else:
                mask = hull_mask(transform_points(job.landmarks, job.matrix), size)
            if visible is not None:
                mask = np.minimum(mask, visible[i])
            span = job.landmarks.max(axis=0) - job.landmarks.min(axis=0)
            if paste_face(
                job.image, job.matrix, job.crop, faces[i], mask, float(span.max()), self.blend
            ):
                self.tally.faces_swapped += 1
