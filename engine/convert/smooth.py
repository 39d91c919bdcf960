"""Steadying faces over time: landmarks averaged over neighbouring frames.

Faces are chained from frame to frame by overlap. Each face's landmarks are
replaced by a Gaussian-weighted mean over the same chain in the frames up to
two sigmas before and after it, so the pasted face does not jitter and does
not lag behind the motion either (the window is centred). Frames come out in
order, `radius` frames after they went in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.faces.types import box_from_landmarks, iou

_SAME_FACE_IOU = 0.3


@dataclass
class Face:
    landmarks: np.ndarray  # (68, 2) frame pixels, as found
    chain: int = -1  # the same person's face in neighbouring frames
    smoothed: np.ndarray | None = None


@dataclass
class Frame:
    index: int
    payload: Any  # whatever the caller needs back with it (pixels, pts)
    faces: list[Face] = field(default_factory=list)


class Smoother:
    def __init__(self, sigma: float) -> None:
        self.radius = math.ceil(2 * sigma) if sigma > 0 else 0
        self.weights = [
            math.exp(-(k * k) / (2 * sigma * sigma)) if sigma > 0 else 1.0
            for k in range(self.radius + 1)
        ]
        self._frames: deque[Frame] = deque()
        self._next = 0  # position in _frames of the next frame to hand out
        self._chains = 0
        self._last_faces: list[Face] = []

    def _link(self, frame: Frame) -> None:
        previous = self._last_faces
        boxes = [box_from_landmarks(f.landmarks) for f in previous]
        taken: set[int] = set()
        for face in frame.faces:
            box = box_from_landmarks(face.landmarks)
            scores = [(iou(box, b), i) for i, b in enumerate(boxes) if i not in taken]
            best = max(scores, default=(0.0, -1))
            if best[0] > _SAME_FACE_IOU:
                taken.add(best[1])
                face.chain = previous[best[1]].chain
            else:
                face.chain = self._chains
                self._chains += 1
        self._last_faces = frame.faces

    def break_chains(self) -> None:
        """The next frame does not follow on from the last (a new image, a gap)."""
        self._last_faces = []

    def _smooth(self, at: int) -> Frame:
        frame = self._frames[at]
        for face in frame.faces:
            total = np.zeros((68, 2), np.float64)
            weight = 0.0
            for offset in range(-self.radius, self.radius + 1):
                pos = at + offset
                if not 0 <= pos < len(self._frames):
                    continue
                for other in self._frames[pos].faces:
                    if other.chain == face.chain:
                        w = self.weights[abs(offset)]
                        total += w * other.landmarks
                        weight += w
            face.smoothed = (total / weight).astype(np.float32)
        return frame

    def push(self, frame: Frame) -> list[Frame]:
        """Add the next frame; returns the frames now ready, in order."""
        self._link(frame)
        self._frames.append(frame)
        ready = []
        while len(self._frames) - self._next > self.radius:
            ready.append(self._smooth(self._next))
            self._next += 1
        self._drop_old()
        return ready

    def flush(self) -> list[Frame]:
        """The frames still held back, at the end of the video."""
        ready = []
        while self._next < len(self._frames):
            ready.append(self._smooth(self._next))
            self._next += 1
        self._drop_old()
        return ready

    def _drop_old(self) -> None:
        while self._next > self.radius:
            self._frames.popleft()
            self._next -= 1
