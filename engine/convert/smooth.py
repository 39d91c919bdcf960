"""Steadying faces over time: landmarks averaged over neighbouring frames.

Faces are chained from frame to frame by overlap. Each face's landmarks are
replaced by a Gaussian-weighted mean over the same chain in the frames up to
two sigmas before and after it, so the pasted face does not jitter and does
not lag behind the motion either (the window is centred). Frames come out in
order, `radius` frames after they went in.

Convert sees the whole video, so a face lost for a few frames inside a shot
(the detector and the tracker both missed it) is filled in: when it comes
back within `max_gap` frames at about the place it left, its landmarks are
interpolated across the gap, so the swap does not blink off. While a face is
missing, frames are held back until it returns or cannot any more, so memory
stays bounded by `radius + max_gap` frames. Nothing is linked, filled or
smoothed across a frame marked `cut` (the first frame of a new shot).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.faces.types import box_from_landmarks, match_by_iou

_SAME_FACE_IOU = 0.3
# Longest run of frames without a face that is filled in (0.4 s at 30 fps).
MAX_GAP = 12


@dataclass
class Face:
    landmarks: np.ndarray  # (68, 2) frame pixels, as found
    chain: int = -1  # the same person's face in neighbouring frames
    smoothed: np.ndarray | None = None
    filled: bool = False  # interpolated across a gap, not found in this frame


@dataclass
class Frame:
    index: int
    payload: Any  # whatever the caller needs back with it (pixels, pts)
    faces: list[Face] = field(default_factory=list)
    cut: bool = False  # the first frame of a new shot (engine.media.shots.ShotCuts)


@dataclass
class _Lost:
    """A chain missing from the frames since `seq`, the last one it was seen in."""

    chain: int
    seq: int
    landmarks: np.ndarray


class Smoother:
    def __init__(self, sigma: float, max_gap: int = MAX_GAP) -> None:
        self.radius = math.ceil(2 * sigma) if sigma > 0 else 0
        self.weights = [
            math.exp(-(k * k) / (2 * sigma * sigma)) if sigma > 0 else 1.0
            for k in range(self.radius + 1)
        ]
        self.max_gap = max_gap
        # Frames are numbered by push order (`seq`); _frames[0] has seq _first.
        self._frames: deque[Frame] = deque()
        self._first = 0
        self._next = 0  # seq of the next frame to hand out
        self._pushed = 0  # seq the next pushed frame gets
        self._chains = 0
        self._last_faces: list[Face] = []
        self._lost: list[_Lost] = []

    def _link(self, frame: Frame, seq: int) -> None:
        if frame.cut:
            self.break_chains()
        # A chain gone for more than max_gap frames is not coming back.
        self._lost = [lost for lost in self._lost if seq - lost.seq - 1 <= self.max_gap]
        previous = self._last_faces
        boxes = [box_from_landmarks(f.landmarks) for f in frame.faces]
        before = [box_from_landmarks(f.landmarks) for f in previous]
        pairs = match_by_iou(boxes, before, _SAME_FACE_IOU)
        for i, j in pairs:
            frame.faces[i].chain = previous[j].chain
        linked = {i for i, _ in pairs}
        rest = [i for i in range(len(frame.faces)) if i not in linked]
        lost_boxes = [box_from_landmarks(lost.landmarks) for lost in self._lost]
        back = match_by_iou([boxes[i] for i in rest], lost_boxes, _SAME_FACE_IOU)
        for a, b in back:
            face = frame.faces[rest[a]]
            face.chain = self._lost[b].chain
            self._fill(self._lost[b], seq, face.landmarks)
        returned = {b for _, b in back}
        self._lost = [lost for k, lost in enumerate(self._lost) if k not in returned]
        refound = {a for a, _ in back}
        for a, i in enumerate(rest):
            if a not in refound:
                frame.faces[i].chain = self._chains
                self._chains += 1
        continued = {j for _, j in pairs}
        self._lost += [
            _Lost(f.chain, seq - 1, f.landmarks)
            for j, f in enumerate(previous)
            if j not in continued
        ]
        # A copy: gap filling appends to earlier frames' lists, never to this.
        self._last_faces = list(frame.faces)

    def _fill(self, lost: _Lost, seq: int, landmarks: np.ndarray) -> None:
        """Interpolate a returning face across the frames it was missing from."""
        span = seq - lost.seq
        for s in range(lost.seq + 1, seq):
            t = (s - lost.seq) / span
            between = (1 - t) * lost.landmarks + t * landmarks
            self._frames[s - self._first].faces.append(
                Face(between.astype(np.float32), chain=lost.chain, filled=True)
            )

    def break_chains(self) -> None:
        """The next frame does not follow on from the last (a new image, a gap, a cut)."""
        self._last_faces = []
        self._lost = []

    def _smooth(self, seq: int) -> Frame:
        at = seq - self._first
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
        seq = self._pushed
        self._pushed += 1
        self._frames.append(frame)
        self._link(frame, seq)
        # Ready: `radius` frames after it are in, and no missing face could still
        # come back and be filled in within its smoothing window.
        limit = self._pushed - self.radius
        for lost in self._lost:
            limit = min(limit, lost.seq + 1 - self.radius)
        return self._release(limit)

    def flush(self) -> list[Frame]:
        """The frames still held back, at the end of the video."""
        self._lost = []
        return self._release(self._pushed)

    def _release(self, limit: int) -> list[Frame]:
        ready = []
        while self._next < limit:
            ready.append(self._smooth(self._next))
            self._next += 1
        # Keep the frames the next ones still smooth over.
        while self._first < self._next - self.radius:
            self._frames.popleft()
            self._first += 1
        return ready
