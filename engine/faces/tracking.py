"""Following faces from one video frame into the next.

Every face on video belongs to a track, kept from frame to frame by overlap.
When the detector misses a face it found a frame earlier (a turned head,
motion blur), the landmarks are re-fitted in the neighbourhood of the last
position, and the result is kept when it still looks like a face: dlib's HOG
face model, run on the re-aligned crop with a lowered threshold, must still
score it as one.

A track also carries its identity embedding, so the expensive embedding
network runs once per track every so often rather than on every frame.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

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
# Re-embed a tracked face after this many processed frames.
EMBED_EVERY = 25
_CHECK_SIZE = 128

Embedding = np.ndarray | Future  # a Future while the worker computes it


@dataclass
class Track:
    landmarks: np.ndarray
    id: int = 0
    run: int = 0  # frames in a row it was followed without a detection
    since_embed: int = EMBED_EVERY  # frames since its embedding was computed
    embedding: Embedding | None = None

    def needs_embedding(self) -> bool:
        return self.embedding is None or self.since_embed >= EMBED_EVERY

    def to_json(self) -> dict[str, Any]:
        """Plain data; a pending embedding must have been resolved by now."""
        emb = self.embedding.result() if isinstance(self.embedding, Future) else self.embedding
        if isinstance(emb, tuple):  # an extraction job's (png, embedding) result
            emb = emb[1]
        # float32 -> Python float is exact, so a resumed run restores identical state.
        return {
            "landmarks": self.landmarks.astype(np.float32).tolist(),
            "id": self.id,
            "run": self.run,
            "since_embed": self.since_embed,
            "embedding": None if emb is None else np.asarray(emb, np.float32).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        emb = data.get("embedding")
        return cls(
            landmarks=np.asarray(data["landmarks"], dtype=np.float32),
            id=int(data.get("id", 0)),
            run=int(data.get("run", 0)),
            since_embed=int(data.get("since_embed", EMBED_EVERY)),
            embedding=None if emb is None else np.asarray(emb, dtype=np.float32),
        )


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

    def _next_id(self, taken: list[Track]) -> int:
        return max((t.id for t in self.tracks + taken), default=-1) + 1

    def step(self, image: np.ndarray, detections: list[Detection]) -> list[FoundFace]:
        """Faces in this frame; each face's `track` is its (new) track."""
        boxes = [d.box for d in detections]
        faces = []
        new_tracks: list[Track] = []
        unmatched = list(self.tracks)
        for det, lm in zip(detections, self.backend.landmarks(image, boxes), strict=True):
            prev = max(
                unmatched, key=lambda t: iou(box_from_landmarks(t.landmarks), det.box), default=None
            )
            if (
                prev is not None
                and iou(box_from_landmarks(prev.landmarks), det.box) > SAME_FACE_IOU
            ):
                unmatched.remove(prev)
                track = replace(prev, landmarks=lm, run=0)
            else:
                track = Track(lm, id=self._next_id(new_tracks))
            new_tracks.append(track)
            faces.append(FoundFace(box=det.box, landmarks=lm, score=det.score, track=track))
        for prev in unmatched:
            if prev.run >= MAX_TRACKED_RUN:
                continue
            found = self._follow(image, prev, faces)
            if found is not None:
                new_tracks.append(found.track)  # type: ignore[arg-type]
                faces.append(found)
        self.tracks = new_tracks
        return faces

    def _follow(self, image: np.ndarray, prev: Track, faces: list[FoundFace]) -> FoundFace | None:
        guess = box_from_landmarks(prev.landmarks)
        if any(iou(guess, f.box) > SAME_FACE_IOU for f in faces):
            return None
        refit = self._refit(image, guess)
        if refit is None:
            return None
        box = box_from_landmarks(refit)
        if any(iou(box, f.box) > SAME_FACE_IOU for f in faces):
            return None
        score = self.checker.score(image, refit)
        if score < FACE_LIKE_SCORE:
            return None
        track = replace(prev, landmarks=refit, run=prev.run + 1)
        return FoundFace(box=box, landmarks=refit, score=score, tracked=True, track=track)

    def _refit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        h, w = image.shape[:2]
        if box[2] < 0 or box[3] < 0 or box[0] > w or box[1] > h:
            return None
        landmarks = self.backend.landmarks(image, [box])[0]
        # A second pass from the box of the first fit settles the landmarks on the face.
        return self.backend.landmarks(image, [box_from_landmarks(landmarks)])[0]
