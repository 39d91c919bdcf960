"""What every face backend provides: boxes, then 68 iBUG landmarks per box."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from engine.faces.types import Detection


class FaceBackend(ABC):
    """Detector + 68-point landmark model. Images are HxWx3 uint8 RGB."""

    name: str = "?"
    # How many frames detect_batch wants at once (GPU backends batch; CPU ones don't).
    batch_size: int = 1

    @abstractmethod
    def describe(self) -> str:
        """One line for people: which models, on which device."""

    def set_min_face(self, min_face: int) -> None:
        """Look for faces down to `min_face` px (box side); backends that can, scale their search.

        The default does nothing: such a backend's detector sees what it sees, and
        the caller drops smaller faces.
        """
        return None

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Face boxes in one image."""

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Face boxes in several images; GPU backends override this to batch."""
        return [self.detect(img) for img in images]

    @abstractmethod
    def landmarks(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """One (68, 2) float32 array of (x, y) per box, in image pixels."""
