"""Steadying faces over time: landmarks averaged over neighbouring frames.

Faces are chained from frame to frame: by their track, where the face finder's
tracker gave them one (extract's, stored in the faceset, or the one convert ran
on the fly), so the chain follows the person extract followed; by overlap
where they have none. Each face's landmarks are replaced by a Gaussian-weighted
mean over the same chain in the frames up to two sigmas before and after it,
so the pasted face does not jitter and does not lag behind the motion either
(the window is centred). Frames come out in order, `radius` frames after they
went in.

Convert sees the whole video, so a face lost for a few frames inside a shot
(the detector and the tracker both missed it) is filled in: when it comes
back within `max_gap` frames at about the place it left, its landmarks are
interpolated across the gap, so the swap does not blink off. (The tracker
gives a face it lost and found again a new track: a new track may take over a
chain missing since an earlier frame, never one in the frame just before.)
While a face is missing, frames are held back until it returns or cannot any
more, so memory stays bounded by `radius + max_gap` frames. Nothing is
linked, filled or smoothed across a frame marked `cut` (the first frame of a
new shot).
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
    track: int | None = None  # the tracker's id: faces with one id are one chain
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
        self._track_chain: dict[int, int] = {}  # track id -> its chain, while alive

    def _link(self, frame: Frame, seq: int) -> None:
        if frame.cut:
            self.break_chains()
        # A chain gone for more than max_gap frames is not coming back.
        self._lost = [lost for lost in self._lost if seq - lost.seq - 1 <= self.max_gap]
        previous = self._last_faces
        faces = frame.faces
        before_at = {f.chain: j for j, f in enumerate(previous)}
        lost_at = {lost.chain: k for k, lost in enumerate(self._lost)}
        continued: set[int] = set()  # faces of `previous` whose chain goes on
        returned: set[int] = set()  # lost chains found again
        # A face whose track already has a chain keeps it: the tracker decided who is who.
        tracked: set[int] = set()
        for i, face in enumerate(faces):
            if face.track is None or face.track not in self._track_chain:
                continue
            chain = self._track_chain[face.track]
            if chain in before_at and before_at[chain] not in continued:
                continued.add(before_at[chain])
            elif chain in lost_at and lost_at[chain] not in returned:
                returned.add(lost_at[chain])
                self._fill(self._lost[lost_at[chain]], seq, face.landmarks)
            else:  # gone too long, or its track twice in this frame: linked below
                continue
            face.chain = chain
            tracked.add(i)
        # Faces with no track link by overlap to the frame before, as they always did.
        boxes = [box_from_landmarks(f.landmarks) for f in faces]
        untracked = [i for i, f in enumerate(faces) if f.track is None and i not in tracked]
        open_before = [j for j in range(len(previous)) if j not in continued]
        pairs = match_by_iou(
            [boxes[i] for i in untracked],
            [box_from_landmarks(previous[j].landmarks) for j in open_before],
            _SAME_FACE_IOU,
        )
        for a, b in pairs:
            faces[untracked[a]].chain = previous[open_before[b]].chain
            continued.add(open_before[b])
        linked = tracked | {untracked[a] for a, _ in pairs}
        # The rest (new tracks, and untracked faces not in the frame before) may be a
        # face lost a few frames ago coming back at about the same place.
        rest = [i for i in range(len(faces)) if i not in linked]
        open_lost = [k for k in range(len(self._lost)) if k not in returned]
        back = match_by_iou(
            [boxes[i] for i in rest],
            [box_from_landmarks(self._lost[k].landmarks) for k in open_lost],
            _SAME_FACE_IOU,
        )
        for a, b in back:
            lost = self._lost[open_lost[b]]
            faces[rest[a]].chain = lost.chain
            self._fill(lost, seq, faces[rest[a]].landmarks)
            returned.add(open_lost[b])
        refound = {a for a, _ in back}
        for a, i in enumerate(rest):
            if a not in refound:
                faces[i].chain = self._chains
                self._chains += 1
        self._lost = [lost for k, lost in enumerate(self._lost) if k not in returned]
        self._lost += [
            _Lost(f.chain, seq - 1, f.landmarks)
            for j, f in enumerate(previous)
            if j not in continued
        ]
        self._remember_tracks(faces)
        # A copy: gap filling appends to earlier frames' lists, never to this.
        self._last_faces = list(faces)

    def _remember_tracks(self, faces: list[Face]) -> None:
        """Each track's chain, kept while the chain is alive (here, or lost and awaited)."""
        for face in faces:
            if face.track is not None:
                # A chain taken over by a new track is no longer its old track's.
                self._track_chain = {t: c for t, c in self._track_chain.items() if c != face.chain}
        for face in faces:
            if face.track is not None:
                self._track_chain.setdefault(face.track, face.chain)
        alive = {f.chain for f in faces} | {lost.chain for lost in self._lost}
        self._track_chain = {t: c for t, c in self._track_chain.items() if c in alive}

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
        self._track_chain = {}

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
