"""Sharpness of an aligned face: variance of the Laplacian inside the face mask.

Higher is sharper. Computed at a fixed 256 px so the score does not depend on
the crop size chosen at extraction.
"""

from __future__ import annotations

import cv2
import numpy as np

_SIZE = 256


def sharpness(face: np.ndarray, mask: np.ndarray) -> float:
    if face.shape[0] != _SIZE:
        face = cv2.resize(face, (_SIZE, _SIZE), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (_SIZE, _SIZE), interpolation=cv2.INTER_NEAREST)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    inside = mask > 127
    if not inside.any():
        return float(lap.var())
    return float(lap[inside].var())
