"""Following faces from one video frame into the next.

Every face on video belongs to a track, kept from frame to frame by overlap.
When the detector misses a face it found a frame earlier (a turned head,
motion blur), the landmarks are re-fitted in the neighbourhood of the last
position, and the result is kept when it still looks like a face: dlib's HOG
face model, run on the re-aligned crop with a lowered threshold, must still
score it as one. A re-fit must also keep the face's shape and scale: with no
face under it the shape predictor stretches the landmarks a little more each
frame, so a re-fit whose shape strays from the last detected one is replaced
by that shape moved (a similarity) onto it, and one whose scale jumps is
dropped. Detections are matched to tracks greedily by overlap over all pairs,
and a hard cut (engine.media.shots) ends every track.

A track also carries its identity embedding, so the expensive embedding
network runs once per track every so often rather than on every frame.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from skimage.transform import SimilarityTransform

from engine.faces.align import alignment_matrix, warp_face
from engine.faces.backends.base import FaceBackend
from engine.faces.types import Detection, FoundFace, box_from_landmarks, iou, match_by_iou
from engine.media.shots import ShotCuts

# A detection and a track overlapping this much are the same face.
SAME_FACE_IOU = 0.3
# HOG score a re-fitted face must reach on its upright crop (detections need 0).
FACE_LIKE_SCORE = -0.6
# Stop following a face after this many frames in a row without a detection.
MAX_TRACKED_RUN = 50
# Re-embed a tracked face after this many processed frames.
EMBED_EVERY = 25
_CHECK_SIZE = 128
# How far a re-fit may stray from the last detected shape, measured on
# consecutive detections of the real footage (talk_d3/d6/d9, d6 with broad
# grimaces): after a similarity fit on the inner points the landmarks' rms
# residual, as a fraction of the face's size, stays under 0.06 up to 12 frames
# apart (median 0.01-0.03), and the height/width ratio within 0.86-1.16 (one
# frame apart: 0.88-1.08). A re-fit beyond these is the predictor stretching.
SHAPE_RESIDUAL = 0.05
SHAPE_ASPECT = 0.06
# Scale change (log) allowed to a followed face: per frame (detections change by
# up to 0.09 at p99 on d6 and 0.03 elsewhere), and since its last detection.
MAX_SCALE_STEP = 0.1
MAX_SCALE_DRIFT = 0.2
_INNER = slice(17, 68)  # brows, nose, eyes, mouth: steadier than the jaw line

Embedding = np.ndarray | Future  # a Future while the worker computes it


# Tracks are told apart by identity: they hold arrays, so a field-wise == (as
# list.remove or `in` would use) has no single truth value.
@dataclass(eq=False)
class Track:
    landmarks: np.ndarray
    id: int = 0
    run: int = 0  # frames in a row it was followed without a detection
    since_embed: int = EMBED_EVERY  # frames since its embedding was computed
    embedding: Embedding | None = None
    anchor: np.ndarray | None = None  # landmarks at its last detection: the shape to keep

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
            "anchor": None if self.anchor is None else self.anchor.astype(np.float32).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        emb = data.get("embedding")
        anchor = data.get("anchor")
        return cls(
            landmarks=np.asarray(data["landmarks"], dtype=np.float32),
            id=int(data.get("id", 0)),
            run=int(data.get("run", 0)),
            since_embed=int(data.get("since_embed", EMBED_EVERY)),
            embedding=None if emb is None else np.asarray(emb, dtype=np.float32),
            anchor=None if anchor is None else np.asarray(anchor, dtype=np.float32),
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
        self.shots = ShotCuts()
        self.tracks: list[Track] = []
        self.cut = False  # whether the last frame stepped started a new shot
        self._last_id = -1  # ids are never reused, not even after a cut

    def reset(self, tracks: list[Track] | None = None, last_id: int = -1) -> None:
        """Start over (a new video, a jump), optionally from saved tracks.

        New tracks get ids above `last_id` and above those of `tracks`: a resumed run
        passes the highest id it stored, so no id is given to two people of a video.
        """
        self.tracks = list(tracks or [])
        self.shots.reset()
        self._last_id = last_id

    def _next_id(self, taken: list[Track]) -> int:
        self._last_id = max([self._last_id, *(t.id for t in self.tracks + taken)]) + 1
        return self._last_id

    def step(self, image: np.ndarray, detections: list[Detection]) -> list[FoundFace]:
        """Faces in this frame; each face's `track` is its (new) track."""
        self.cut = self.shots.step(image)
        if self.cut:
            # A new shot: whoever stood here before is gone, even if someone else
            # now stands at the same place.
            self.tracks = []
        boxes = [d.box for d in detections]
        landmarks = self.backend.landmarks(image, boxes)
        guesses = [box_from_landmarks(t.landmarks) for t in self.tracks]
        track_of = {j: i for i, j in match_by_iou(guesses, boxes, SAME_FACE_IOU)}
        faces = []
        new_tracks: list[Track] = []
        for j, (det, lm) in enumerate(zip(detections, landmarks, strict=True)):
            if j in track_of:
                track = replace(self.tracks[track_of[j]], landmarks=lm, run=0, anchor=lm)
            else:
                track = Track(lm, id=self._next_id(new_tracks), anchor=lm)
            new_tracks.append(track)
            faces.append(FoundFace(box=det.box, landmarks=lm, score=det.score, track=track))
        matched = set(track_of.values())
        for i, prev in enumerate(self.tracks):
            if i in matched or prev.run >= MAX_TRACKED_RUN:
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
        refit = keep_shape(prev, refit)
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


def _similarity(src: np.ndarray, dst: np.ndarray) -> SimilarityTransform | None:
    tform = SimilarityTransform.from_estimate(
        src[_INNER].astype(np.float64), dst[_INNER].astype(np.float64)
    )
    return tform if tform else None


def _aspect(landmarks: np.ndarray) -> float:
    w, h = landmarks.max(axis=0) - landmarks.min(axis=0)
    return float(h / max(w, 1e-6))


def keep_shape(prev: Track, refit: np.ndarray) -> np.ndarray | None:
    """The re-fitted landmarks, held to the face's last detected shape and scale.

    A re-fit close to the anchor's shape (the landmarks of the last detection) is
    kept; one that strays, stretched or squashed, is replaced by the anchor moved
    onto it by a similarity. None when the face's scale jumps: nothing real under
    the landmarks grows or shrinks that fast while the detector misses it.
    """
    anchor = prev.anchor if prev.anchor is not None else prev.landmarks
    onto = _similarity(anchor, refit)
    if onto is None:
        return None
    moved = onto(anchor.astype(np.float64)).astype(np.float32)
    size = float((refit.max(axis=0) - refit.min(axis=0)).mean())
    residual = float(np.sqrt(((moved - refit) ** 2).sum(axis=1).mean())) / max(size, 1e-6)
    stretch = abs(np.log(_aspect(refit) / _aspect(anchor)))
    out = refit if residual <= SHAPE_RESIDUAL and stretch <= SHAPE_ASPECT else moved
    step = _similarity(prev.landmarks, out)
    if step is None or abs(np.log(step.scale)) > MAX_SCALE_STEP:
        return None
    if abs(np.log(onto.scale)) > MAX_SCALE_DRIFT:
        return None
    return out
