"""128-d identity embeddings from dlib's face recognition ResNet (offline).

Two faces of one person are usually closer than 0.6 in this space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import BadInputError
from engine.faces.backends.base import FaceBackend
from engine.faces.models import RECOGNITION, dlib_model
from engine.media.images import read_image

SAME_PERSON = 0.6


class Embedder:
    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._model_file = dlib_model(RECOGNITION)
        self._net = None  # loaded on first use: cutting chips does not need it

    @property
    def net(self):
        if self._net is None:
            self._net = self._dlib.face_recognition_model_v1(str(self._model_file))
        return self._net

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150x150 crop dlib's network expects, from 68 landmarks."""
        dlib = self._dlib
        pts = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
        lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
        rect = dlib.rectangle(
            round(float(lo[0])), round(float(lo[1])), round(float(hi[0])), round(float(hi[1]))
        )
        shape = dlib.full_object_detection(rect, pts)
        return np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self.net.compute_face_descriptor(chip), dtype=np.float32)

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.embed_chip(self.chip(image, landmarks))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def nearest_distance(embedding: np.ndarray, references: np.ndarray) -> float:
    """Distance to the closest of several reference embeddings (N, 128)."""
    if len(references) == 0:
        return float("inf")
    return float(np.linalg.norm(references - embedding[None, :], axis=1).min())


# A face under this fraction of the largest one's width is background (a passer-by, a
# poster), not a second candidate for the person to keep.
_BACKGROUND_FACE = 0.5


def reference_embeddings(paths: list[Path], backend: FaceBackend, embedder: Embedder) -> np.ndarray:
    """One embedding per photo, of its one face; a photo without a face is bad input.

    A photo of two or more people is refused rather than guessed at: picking one of
    them would silently keep (or swap) the wrong person. Much smaller faces behind
    the person are ignored.
    """
    embeddings = []
    for path in paths:
        image = read_image(Path(path))
        detections = backend.detect(image)
        if not detections:
            raise BadInputError(
                f"no face found in reference photo {path}",
                "use a clear, frontal photo of the person to keep",
            )
        best = max(detections, key=lambda d: d.width * d.height)
        people = sum(d.width >= _BACKGROUND_FACE * best.width for d in detections)
        if people > 1:
            raise BadInputError(
                f"reference photo {path} shows {people} faces; it must show only the person "
                "to keep",
                "crop it to the one person",
            )
        landmarks = backend.landmarks(image, [best.box])[0]
        embeddings.append(embedder.embed(image, landmarks))
    return np.stack(embeddings) if embeddings else np.zeros((0, 128), np.float32)
