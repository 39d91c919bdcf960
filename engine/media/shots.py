"""Hard cuts between shots, judged from consecutive frames.

A face followed by overlap must not survive a cut onto another person who
happens to stand at the same place, and convert must not fill or smooth a
face across one. Consecutive frames of one shot share their colours; a cut
changes most of them at once. So each frame is shrunk to a thumbnail, its
hue/saturation and grey histograms are compared with the previous frame's
(Bhattacharyya distance, OpenCV), and a jump past a threshold is a cut.
This is cheap (well under a millisecond a frame) and needs no model.
"""

from __future__ import annotations

import cv2
import numpy as np

# Thumbnail width: enough for colour statistics, small enough to cost nothing.
_THUMB = 96
# Bhattacharyya distance (0 same, 1 disjoint) past which two frames are in
# different shots. On the real footage (every talk_d* clip, head turns and
# grimaces included, also at every third frame) frames of one shot stay
# below 0.11, and the cuts of tests/footage.cuts land at 0.61 to 0.79.
CUT_DISTANCE = 0.35


def _signature(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    thumb = cv2.resize(image, (_THUMB, max(1, round(_THUMB * h / w))), interpolation=cv2.INTER_AREA)
    if thumb.ndim == 2:
        thumb = cv2.cvtColor(thumb, cv2.COLOR_GRAY2RGB)
    hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
    grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY)
    colour = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    light = cv2.calcHist([grey], [0], None, [32], [0, 256])
    return cv2.normalize(colour, colour).flatten(), cv2.normalize(light, light).flatten()


def frame_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How different two RGB frames look, 0 (same) to 1."""
    return _distance(_signature(a), _signature(b))


def _distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    colour = cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA)
    light = cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA)
    return float(max(colour, light))


class ShotCuts:
    """Fed frames in order, says which ones start a new shot."""

    def __init__(self, threshold: float = CUT_DISTANCE) -> None:
        self.threshold = threshold
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.last_distance = 0.0

    def reset(self) -> None:
        """The next frame does not follow the last one (a new video, a seek)."""
        self._previous = None
        self.last_distance = 0.0

    def step(self, image: np.ndarray) -> bool:
        """True when `image` is the first frame of a new shot (never for the first frame)."""
        signature = _signature(image)
        previous, self._previous = self._previous, signature
        if previous is None:
            self.last_distance = 0.0
            return False
        self.last_distance = _distance(previous, signature)
        return self.last_distance > self.threshold
