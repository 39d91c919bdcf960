"""Alignment: a similarity transform from a face's landmarks to the mean face.

The transform is estimated with scikit-image's least-squares estimator on the
inner points (brows, nose, eyes, mouth); the jaw line moves too much with pose
to anchor on.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from engine.faces.mean_face import MEAN_FACE_68

_INNER = slice(17, 68)
# Where the crop is centred, in mean-face units: a little above the face's middle,
# so the crop keeps the forehead as well as the chin.
_CENTRE = np.array([0.5, 0.55])
_FULL_SPAN = float((MEAN_FACE_68.max(axis=0) - MEAN_FACE_68.min(axis=0)).max())


def template(size: int, coverage: float) -> np.ndarray:
    """The mean face's 68 points in crop pixels for a crop of `size` and `coverage`."""
    scale = coverage * size / _FULL_SPAN
    return (MEAN_FACE_68 - _CENTRE) * scale + size / 2


def alignment_matrix(landmarks: np.ndarray, size: int, coverage: float) -> np.ndarray:
    """The 2x3 matrix taking image pixels to aligned-crop pixels."""
    dst = template(size, coverage)[_INNER]
    tform = SimilarityTransform.from_estimate(landmarks[_INNER].astype(np.float64), dst)
    if not tform:
        raise ValueError("landmarks are degenerate; no similarity transform fits them")
    return np.asarray(tform.params[:2], dtype=np.float64)


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned face out of `image`. Outside the frame is black."""
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)
