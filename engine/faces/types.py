"""Plain data passed between the face steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Detection:
    """A face box (x0, y0, x1, y1) in image pixels, with the detector's confidence."""

    box: np.ndarray
    score: float = 1.0

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@dataclass
class FoundFace:
    """A face with its 68 iBUG landmarks (x, y), in image pixels."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float = 1.0
    tracked: bool = False
    track: Any = field(default=None, repr=False)  # its tracking.Track, on video

    @property
    def size(self) -> float:
        """Face size in pixels, as the detector measures it (what `--min-face` is checked against).

        The box the detector would draw around the landmarks (`box_from_landmarks`),
        or the detector's own box where that is larger by at most one HOG step.
        HOG's boxes come in 1.2x steps (72, 86, 104 px...), so a face of about
        80 px is drawn as 72 or 86 from frame to frame; the landmarks' box is
        continuous and agrees with HOG's on average, and taking the detector's
        box up to 1.2x of it does not drop a face the detector called big
        enough. A looser box (BlazeFace draws small faces far away up to 1.5x
        their landmarks) does not make a small face count as a big one. A
        tracked face has no detector box: its box is drawn from the landmarks.
        """
        drawn = box_from_landmarks(self.landmarks)
        side = float(drawn[2] - drawn[0])
        detected = float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))
        return max(side, min(detected, _HOG_STEP * side))


# HOG's pyramid steps: its box for one face varies by up to this factor.
_HOG_STEP = 1.2


# dlib's HOG box around a face, from its 68 landmarks, measured on 599
# detections in the real footage (talk_d0/3/6/9/13 at full, half and 0.3 size,
# boxes 72 to 446 px): the box is square, its side 1.04 times the mean of the
# landmarks' width and height (5-95 %: 0.93-1.19, most of it HOG's 1.2x
# scale steps), its centre 0.087 of the landmarks' height above theirs.
_BOX_PER_SPAN = 1.04
_BOX_RAISE = 0.087


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The box (x0, y0, x1, y1) dlib's HOG detector would draw around these landmarks."""
    lo = landmarks.min(axis=0)
    hi = landmarks.max(axis=0)
    w, h = hi - lo
    half = _BOX_PER_SPAN * (w + h) / 4
    cx = (lo[0] + hi[0]) / 2
    cy = (lo[1] + hi[1]) / 2 - _BOX_RAISE * h
    return np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_by_iou(
    a: list[np.ndarray], b: list[np.ndarray], threshold: float
) -> list[tuple[int, int]]:
    """Pairs (i, j) of boxes a[i], b[j] that are the same face, best overlap first.

    Greedy over all pairs: the most overlapping pair is matched, both leave, and
    so on while the overlap exceeds `threshold`. Unlike matching each box of `a`
    in turn, the result does not depend on the order of either list.
    """
    pairs = sorted(
        ((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)),
        key=lambda p: -p[0],
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for overlap, i, j in pairs:
        if overlap <= threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matched.append((i, j))
    return matched
