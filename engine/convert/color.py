"""Colour transfer: make the swapped face take on the lighting of the face it replaces.

Statistics are taken inside the face mask only, so background and hair in
the crop do not pull the colours.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from skimage.exposure import match_histograms

Transfer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_MIN_PIXELS = 16  # fewer masked pixels than this: too few for statistics


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)


def _rgb(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def reinhard(face: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Reinhard et al.: match mean and spread of each LAB channel to the target's."""
    src, dst = _lab(face), _lab(target)
    s, d = src[inside], dst[inside]
    scale = d.std(axis=0) / np.maximum(s.std(axis=0), 1e-3)
    # Cap the gain: a flat, dark source face would otherwise get its noise blown up.
    scale = np.clip(scale, 0.25, 4.0)
    return _rgb((src - s.mean(axis=0)) * scale + d.mean(axis=0))


def histogram(face: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Match each RGB channel's histogram inside the mask to the target's."""
    out = face.copy()
    matched = match_histograms(face[inside][None], target[inside][None], channel_axis=-1)
    out[inside] = np.clip(matched[0] + 0.5, 0, 255).astype(np.uint8)
    return out


def average(face: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Shift each RGB channel so the mean colour inside the mask matches the target's."""
    shift = target[inside].mean(axis=0) - face[inside].astype(np.float32).mean(axis=0)
    return np.clip(face.astype(np.float32) + shift + 0.5, 0, 255).astype(np.uint8)


TRANSFERS: dict[str, Transfer] = {"rct": reinhard, "hist": histogram, "avg": average}


def transfer_color(face: np.ndarray, target: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """`face` recoloured like `target` (both RGB uint8 crops) where `mask` (uint8) is set."""
    if how == "none":
        return face
    inside = mask > 127
    if int(inside.sum()) < _MIN_PIXELS:
        return face
    return TRANSFERS[how](face, target, inside)
