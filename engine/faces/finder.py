"""Finding faces frame by frame, the way extract does: detect, fit landmarks, follow.

Convert and score look for faces in footage no faceset was made from; they
use this so that they find exactly the faces extract would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from engine.faces.backends import BackendChoice, FaceBackend, choose_backend, load_backend
from engine.faces.tracking import Tracker
from engine.faces.types import FoundFace


class FaceFinder:
    """Faces in frames, left to right; on video, followed through detector misses."""

    def __init__(
        self, backend: str = "auto", detector: str = "hog", device: str = "auto", min_face: int = 40
    ) -> None:
        self.choice: BackendChoice = choose_backend(backend, detector)
        self.backend: FaceBackend = load_backend(self.choice.name, detector, device)
        self.backend.set_min_face(min_face)
        self.min_face = min_face
        self.tracker = Tracker(self.backend)

    def reset(self) -> None:
        """Forget the faces followed so far (a new video, or a jump in time)."""
        self.tracker.reset()

    def find(self, image: np.ndarray, video: bool) -> list[FoundFace]:
        return self.find_batch([image], video)[0]

    def find_batch(self, images: list[np.ndarray], video: bool) -> list[list[FoundFace]]:
        """Faces in consecutive frames; detection runs batched (the GPU backend likes that)."""
        found = []
        for image, detections in zip(images, self.backend.detect_batch(images), strict=True):
            if video:
                faces = self.tracker.step(image, detections)
            else:
                boxes = [d.box for d in detections]
                faces = [
                    FoundFace(box=d.box, landmarks=lm, score=d.score)
                    for d, lm in zip(detections, self.backend.landmarks(image, boxes), strict=True)
                ]
            faces = [f for f in faces if f.size >= self.min_face]
            faces.sort(key=lambda f: (float(f.box[0]), float(f.box[1])))
            found.append(faces)
        return found

    def stream(
        self, frames: Iterable[tuple[int, np.ndarray]], video: bool
    ) -> Iterator[tuple[int, np.ndarray, list[FoundFace]]]:
        """(index, frame, faces) for each frame, detecting a batch at a time."""
        batch: list[tuple[int, np.ndarray]] = []
        size = max(1, self.backend.batch_size)

        def flush() -> Iterator[tuple[int, np.ndarray, list[FoundFace]]]:
            faces = self.find_batch([img for _, img in batch], video)
            for (index, image), these in zip(batch, faces, strict=True):
                yield index, image, these
            batch.clear()

        for item in frames:
            batch.append(item)
            if len(batch) >= size:
                yield from flush()
        if batch:
            yield from flush()
