"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks.

A weak-perspective fit: the affine camera that best maps a small 3D head model
onto the landmarks (least squares), made a rotation by orthonormalising it.
Unlike iterative PnP it has no local minima to fall into, and faces are far
enough from the camera for perspective not to matter for a pose estimate.
"""

from __future__ import annotations

import numpy as np

from engine.faces.mean_face import MEAN_FACE_68

_POINTS = [30, 8, 36, 45, 48, 54, 39, 42, 33]  # nose tip, chin, eye corners, mouth, nose base
# Depth of those points behind the nose tip, in millimetres (rough anthropometric
# averages); their x and y come from the mean face, so the mean face reads 0, 0, 0.
_DEPTH = np.array([0.0, -12.5, -26.0, -26.0, -24.1, -24.1, -21.0, -21.0, -8.0])


def _model_points() -> np.ndarray:
    pts = MEAN_FACE_68[_POINTS]
    eye_span = np.linalg.norm(MEAN_FACE_68[45] - MEAN_FACE_68[36])
    xy = (pts - MEAN_FACE_68[30]) * (86.6 / eye_span)
    # Model axes: x right, y up, z towards the camera.
    return np.column_stack([xy[:, 0], -xy[:, 1], _DEPTH])


_MODEL = _model_points()
_MODEL_C = _MODEL - _MODEL.mean(axis=0)


def head_pose(
    landmarks: np.ndarray, image_size: tuple[int, int] | None = None
) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; 0, 0, 0 is a face looking into the camera.

    `image_size` is accepted for callers that know it; the weak-perspective fit
    does not need it.
    """
    pts = landmarks[_POINTS].astype(np.float64)
    pts = np.column_stack([pts[:, 0], -pts[:, 1]])  # image y points down; model y up
    pts -= pts.mean(axis=0)
    affine, *_ = np.linalg.lstsq(_MODEL_C, pts, rcond=None)  # (3, 2)
    r1 = affine[:, 0] / np.linalg.norm(affine[:, 0])
    r2 = affine[:, 1] - r1 * (r1 @ affine[:, 1])
    r2 /= np.linalg.norm(r2)
    rot = np.vstack([r1, r2, np.cross(r1, r2)])
    yaw = float(np.degrees(np.arcsin(np.clip(rot[0, 2], -1.0, 1.0))))
    pitch = float(np.degrees(np.arctan2(-rot[1, 2], rot[2, 2])))
    roll = float(np.degrees(np.arctan2(-rot[0, 1], rot[0, 0])))
    return yaw, pitch, roll
