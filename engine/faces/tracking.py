"""Following faces from one video frame into the next.

When the detector misses a face it found a frame earlier (a turned head, motion
blur), the landmarks are re-fitted in the neighbourhood of the last position,
and the result is kept when it still looks like a face: dlib's HOG face model,
run on the re-aligned crop with a lowered threshold, must still score it as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.faces.align import alignment_matrix, warp_face
from engine.faces.backends.base import FaceBackend
from engine.faces.types import Detection, FoundFace, box_from_landmarks, iou

# A detection and a track overlapping this much are the same face.
SAME_FACE_IOU = 0.3
# HOG score a re-fitted face must reach on its upright crop (detections need 0).
FACE_LIKE_SCORE = -0.6
# Stop following a face after this many frames in a row without a detection.
MAX_TRACKED_RUN = 50
_CHECK_SIZE = 128


@dataclass
class Track:
    landmarks: np.ndarray
    run: int = 0  # frames in a row it was followed without a detection

    def to_json(self) -> dict[str, object]:
        # float32 -> Python float is exact, so a resumed run restores identical state.
        return {"landmarks": self.landmarks.astype(np.float32).tolist(), "run": self.run}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Track:
        return cls(np.asarray(data["landmarks"], dtype=np.float32), int(data["run"]))  # type: ignore[arg-type]


class FaceChecker:
    """Scores how face-like an upright, aligned crop is (dlib's HOG model)."""

    def __init__(self) -> None:
        import dlib

        self._hog = dlib.get_frontal_face_detector()

    def score(self, image: np.ndarray, landmarks: np.ndarray) -> float:
        matrix = alignment_matrix(landmarks, _CHECK_SIZE, 0.62)
        crop = warp_face(image, matrix, _CHECK_SIZE)
        _, scores, _ = self._hog.run(crop, 0, FACE_LIKE_SCORE - 1.0)
        return float(max(scores)) if len(scores) else -10.0


class Tracker:
    """Turns per-frame detections into faces, filling detector misses from the last frame."""

    def __init__(self, backend: FaceBackend, checker: FaceChecker | None = None) -> None:
        self.backend = backend
        self.checker = checker or FaceChecker()
        self.tracks: list[Track] = []

    def reset(self, tracks: list[Track] | None = None) -> None:
        self.tracks = list(tracks or [])

    def step(self, image: np.ndarray, detections: list[Detection]) -> list[FoundFace]:
        boxes = [d.box for d in detections]
        faces = [
            FoundFace(box=d.box, landmarks=lm, score=d.score)
            for d, lm in zip(detections, self.backend.landmarks(image, boxes), strict=True)
        ]
        new_tracks = [Track(f.landmarks) for f in faces]
        for track in self.tracks:
            if track.run >= MAX_TRACKED_RUN:
                continue
            guess = box_from_landmarks(track.landmarks)
            if any(iou(guess, f.box) > SAME_FACE_IOU for f in faces):
                continue
            refit = self._refit(image, guess)
            if refit is None:
                continue
            box = box_from_landmarks(refit)
            if any(iou(box, f.box) > SAME_FACE_IOU for f in faces):
                continue
            score = self.checker.score(image, refit)
            if score < FACE_LIKE_SCORE:
                continue
            faces.append(FoundFace(box=box, landmarks=refit, score=score, tracked=True))
            new_tracks.append(Track(refit, track.run + 1))
        self.tracks = new_tracks
        return faces

    def _refit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        h, w = image.shape[:2]
        if box[2] < 0 or box[3] < 0 or box[0] > w or box[1] > h:
            return None
        landmarks = self.backend.landmarks(image, [box])[0]
        # A second pass from the box of the first fit settles the landmarks on the face.
        return self.backend.landmarks(image, [box_from_landmarks(landmarks)])[0]
