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
        """Face size in pixels: the larger side of the landmarks' bounding box."""
        span = self.landmarks.max(axis=0) - self.landmarks.min(axis=0)
        return float(span.max())


def box_from_landmarks(landmarks: np.ndarray, pad: float = 0.1) -> np.ndarray:
    """A square-ish box around the landmarks, like a detector would draw."""
    lo = landmarks.min(axis=0)
    hi = landmarks.max(axis=0)
    w, h = hi - lo
    # Detector boxes start about at the brows; landmarks stop there, so pad the top more.
    return np.array(
        [lo[0] - pad * w, lo[1] - 2 * pad * h, hi[0] + pad * w, hi[1] + pad * h / 2],
        dtype=np.float32,
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
