"""Landmark-hull masks: where the face is, in an aligned crop."""

from __future__ import annotations

import cv2
import numpy as np


def hull_mask(points: np.ndarray, size: int, forehead: float = 0.3) -> np.ndarray:
    """A filled convex hull of the 68 points (uint8, 0 or 255).

    The brows are lifted by `forehead` times their distance to the nose tip, so
    the mask reaches into the forehead as the extended masks of other tools do.
    """
    pts = points.astype(np.float64).copy()
    brows = pts[17:27]
    lift = (brows.mean(axis=0) - pts[30]) * forehead
    pts = np.vstack([pts, brows + lift])
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA)
    return mask
