"""Putting a swapped face back into its frame.

Everything happens in a region of interest around the face: the swapped crop
and its mask are warped back with the inverse of the alignment transform, the
mask is eroded and feathered in frame pixels, and the face is composited in.
Pixels where the mask is zero are not touched at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.convert.color import transfer_color

# Automatic feather: this share of the face's size, in frame pixels.
_AUTO_BLUR = 0.06


@dataclass(frozen=True)
class BlendSettings:
    erode: int = 0  # frame pixels; negative grows the mask
    blur: int | None = None  # frame pixels; None: by face size
    color: str = "rct"
    seamless: bool = False


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _region(
    inverse: np.ndarray, size: int, pad: int, frame_shape: tuple[int, ...]
) -> tuple[int, int, int, int] | None:
    """Frame-pixel box (x0, y0, x1, y1) holding the crop's footprint plus `pad`."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    pts = corners @ inverse[:, :2].T + inverse[:, 2]
    h, w = frame_shape[:2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _feather(mask: np.ndarray, erode: int, blur: int) -> np.ndarray:
    if erode > 0:
        mask = cv2.erode(mask, _disk(erode))
    elif erode < 0:
        mask = cv2.dilate(mask, _disk(-erode))
    if blur > 0:
        k = 2 * blur + 1
        mask = cv2.GaussianBlur(mask, (k, k), 0)
    return mask


def paste_face(
    frame: np.ndarray,
    matrix: np.ndarray,
    original_crop: np.ndarray,
    face: np.ndarray,
    mask: np.ndarray,
    face_size: float,
    settings: BlendSettings,
) -> bool:
    """Blend `face` (an S x S RGB crop) into `frame` in place; False if nothing was pasted.

    `matrix` takes frame pixels to crop pixels; `original_crop` is what the model
    saw, used as the colour reference; `mask` (S x S uint8) says where the face is.
    """
    size = face.shape[0]
    face = transfer_color(face, original_crop, mask, settings.color)
    blur = settings.blur if settings.blur is not None else max(1, round(face_size * _AUTO_BLUR))
    inverse = cv2.invertAffineTransform(matrix)
    box = _region(inverse, size, blur + abs(settings.erode) + 2, frame.shape)
    if box is None:
        return False
    x0, y0, x1, y1 = box
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(
        face, local, dsize, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    alpha = cv2.warpAffine(mask, local, dsize, flags=cv2.INTER_LINEAR)
    alpha = _feather(alpha, settings.erode, blur)
    if not alpha.any():
        return False
    roi = frame[y0:y1, x0:x1]
    if settings.seamless:
        warped = _seamless(warped, roi, alpha)
    a = alpha.astype(np.float32)[..., None] / 255
    mixed = warped.astype(np.float32) * a + roi.astype(np.float32) * (1 - a)
    out = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    # Bit-exact outside the mask, whatever rounding did.
    frame[y0:y1, x0:x1] = np.where(alpha[..., None] > 0, out, roi)
    return True


def _seamless(face: np.ndarray, roi: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Poisson-blend the face into the region: its gradients, the frame's colours at the edge."""
    solid = (alpha > 127).astype(np.uint8) * 255
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return face
    # seamlessClone needs the mask away from the image border.
    solid[[0, -1], :] = 0
    solid[:, [0, -1]] = 0
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    center = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    try:
        return cv2.seamlessClone(face, roi, solid, center, cv2.NORMAL_CLONE)
    except cv2.error:
        return face  # degenerate masks (a sliver at the frame edge): plain blend instead
