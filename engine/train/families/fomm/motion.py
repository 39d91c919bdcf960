"""How a driving video's keypoints move the source: relative motion, adapt-scale, best frame.

Absolute keypoints would copy the driving person's face shape onto the source, so the
default is relative (the paper, section 4.4): each driving frame's displacement from
the driving video's first frame, applied to the source's own keypoints, and its local
affine change J_d J_init^-1 applied to the source's Jacobians. A face that fills less
of the driving frame than the source fills its own moves its keypoints less: with
adapt-scale the displacements grow by the ratio of the keypoint hulls' sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError

KP = dict[str, torch.Tensor]


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (N, 2) points; 0 for fewer than 3 or collinear ones."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    try:
        return float(ConvexHull(pts).volume)  # in 2-D, qhull's "volume" is the area
    except QhullError:
        return 0.0


def relative_motion(
    kp_source: KP,
    kp_driving: KP,
    kp_initial: KP,
    *,
    relative: bool = True,
    adapt_scale: bool = False,
) -> KP:
    """The keypoints to animate the source with, one set per driving frame.

    kp_source and kp_initial (the driving video's reference frame) hold one frame
    ((1, K, 2) values, (1, K, 2, 2) Jacobians); kp_driving holds N. Relative:
    value = (driving - initial) * scale + source, jacobian = J_d @ inv(J_init) @ J_s,
    scale = sqrt(hull(source) / hull(initial)) with adapt_scale, else 1. Absolute
    (relative=False): the driving keypoints unchanged.
    """
    if not relative:
        return dict(kp_driving)
    scale = 1.0
    if adapt_scale:
        source_area = hull_area(kp_source["value"][0].detach().float().cpu().numpy())
        initial_area = hull_area(kp_initial["value"][0].detach().float().cpu().numpy())
        # A degenerate reference hull says nothing about size: leave the motion as it is.
        if initial_area > 0:
            scale = math.sqrt(source_area / initial_area)
    out = dict(kp_driving)
    out["value"] = (kp_driving["value"] - kp_initial["value"]) * scale + kp_source["value"]
    if "jacobian" in kp_driving:
        change = kp_driving["jacobian"].float() @ torch.linalg.inv(kp_initial["jacobian"].float())
        out["jacobian"] = change @ kp_source["jacobian"].float()
    return out


def normalised_landmarks(lm: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks centred on their mean and divided by the square root of their
    hull's area: comparable across face sizes and positions."""
    pts = np.asarray(lm, dtype=np.float64)[:, :2]
    centred = pts - pts.mean(axis=0, keepdims=True)
    area = hull_area(centred)
    return centred / math.sqrt(area) if area > 0 else centred


def best_frame(source_lm: np.ndarray, driving_lms: Sequence[np.ndarray | None]) -> int:
    """Index of the driving frame whose normalised landmarks are nearest the source's
    (sum of squared distances); frames without landmarks (None) are skipped."""
    source = normalised_landmarks(source_lm)
    best, best_distance = -1, math.inf
    for index, lm in enumerate(driving_lms):
        if lm is None:
            continue
        distance = float(((normalised_landmarks(lm) - source) ** 2).sum())
        if distance < best_distance:
            best, best_distance = index, distance
    if best < 0:
        raise ValueError("no driving frame has landmarks")
    return best
