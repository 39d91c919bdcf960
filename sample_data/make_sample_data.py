"""Build swapdeck's sample data from two public-domain portraits.

Identity ``a`` is Eileen Collins (``skimage.data.astronaut()``, NASA) and identity ``b`` is
Grace Hopper (matplotlib's ``grace_hopper.jpg``, US Navy).  Both are US-government works in the
public domain.  From each portrait the script renders a set of varied stills (head turn, tilt,
scale, lighting, expression, blur, JPEG quality, background) and, for ``a``, an 8 s talking
clip with a matching AAC voice track.

Everything is seeded, so reruns write the same files::

    python sample_data/make_sample_data.py
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import dlib
import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata
from skimage.transform import PiecewiseAffineTransform

HERE = Path(__file__).resolve().parent
SEED = 20_240_611
N_STILLS = 64  # per identity
MIN_HIT_RATE = 0.95  # HOG must find exactly the main face in at least this share

CLIP_SIZE = (640, 360)  # width, height
CLIP_FPS = 25
CLIP_SECONDS = 8
AUDIO_RATE = 44_100
AAC_FRAME = 1024  # samples per AAC frame

Rng = np.random.Generator

# 68-point landmark indices (iBUG layout) used by the expression warp.
BROWS = np.arange(17, 27)
UPPER_LID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))  # (upper lid, lower lid)
INNER_LIPS = np.arange(60, 68)


# --------------------------------------------------------------------------- dlib


def models_dir() -> Path:
    # Importing face_recognition_models pulls in pkg_resources; locating it is enough.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SystemExit("face_recognition_models is not installed")
    return Path(spec.origin).parent / "models"


@dataclass(frozen=True)
class Dlib:
    detector: dlib.fhog_object_detector
    predictor: dlib.shape_predictor

    @classmethod
    def load(cls) -> Dlib:
        predictor_path = models_dir() / "shape_predictor_68_face_landmarks.dat"
        return cls(dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path)))

    def detect(self, rgb: np.ndarray, upsample: int = 0) -> list[tuple[int, int, int, int]]:
        rects = self.detector(np.ascontiguousarray(rgb), upsample)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        shape = self.predictor(np.ascontiguousarray(rgb), dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


# --------------------------------------------------------------------------- portraits


@dataclass(frozen=True)
class Portrait:
    name: str
    image: np.ndarray  # RGB uint8, head-and-shoulders crop
    points: np.ndarray  # (68, 2) landmarks in crop coordinates

    @property
    def face_width(self) -> float:
        return float(self.points[16, 0] - self.points[0, 0])

    @property
    def centre(self) -> np.ndarray:
        return self.points.mean(axis=0)


def load_portrait(name: str, rgb: np.ndarray, tools: Dlib) -> Portrait:
    """Find the face and crop to head and shoulders (keeps the astronaut's suit patch out)."""
    boxes = tools.detect(rgb, 0)
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    pts = tools.landmarks(rgb, box)
    fw = pts[16, 0] - pts[0, 0]
    cx, cy = pts.mean(axis=0)
    h, w = rgb.shape[:2]
    x0, x1 = max(0, int(cx - 2.0 * fw)), min(w, int(cx + 2.0 * fw))
    y0, y1 = max(0, int(cy - 1.4 * fw)), min(h, int(cy + 2.3 * fw))
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    return Portrait(name, crop, pts - (x0, y0))


def load_portraits(tools: Dlib) -> tuple[Portrait, Portrait]:
    astronaut = skdata.astronaut()
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    return load_portrait("a", astronaut, tools), load_portrait("b", hopper, tools)


# --------------------------------------------------------------------------- expression


@dataclass(frozen=True)
class Expression:
    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    smile: float = 0.0  # -0.5 (corners down) .. 1 (smile)
    brow_raise: float = 0.0  # -1 (frown) .. 1 (surprise)
    eye_close: float = 0.0  # 0 open .. 1 blink

    @property
    def is_neutral(self) -> bool:
        parts = (self.mouth_open, self.smile, self.brow_raise, self.eye_close)
        return all(abs(v) < 1e-3 for v in parts)


def random_expression(rng: Rng) -> Expression:
    # Each part moves on its own, so some stills get only a smile, some only a raised brow.
    def part(p: float, lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi)) if rng.random() < p else 0.0

    return Expression(
        mouth_open=part(0.45, 0.15, 0.9),
        smile=part(0.45, -0.4, 1.0),
        brow_raise=part(0.4, -0.8, 1.0),
        eye_close=part(0.25, 0.1, 0.55),
    )


def move_landmarks(pts: np.ndarray, fw: float, expr: Expression) -> np.ndarray:
    """Displace mouth, jaw, brow and eyelid landmarks; offsets are in face widths."""
    out = pts.copy()
    # Mouth opening: the jaw and lower lip drop, the upper lip barely moves.
    drop = expr.mouth_open * 0.11 * fw
    lower = {65: 1.0, 66: 1.0, 67: 1.0, 56: 0.95, 57: 0.95, 58: 0.95, 55: 0.7, 59: 0.7}
    lower |= {48: 0.35, 54: 0.35, 60: 0.4, 64: 0.4, 61: -0.08, 62: -0.08, 63: -0.08}
    lower |= {8: 0.75, 7: 0.65, 9: 0.65, 6: 0.45, 10: 0.45, 5: 0.25, 11: 0.25, 4: 0.1, 12: 0.1}
    for idx, weight in lower.items():
        out[idx, 1] += weight * drop
    # Smile: corners go out and up, their neighbours follow half way.
    dx, dy = expr.smile * 0.045 * fw, -expr.smile * 0.035 * fw
    for idx, side, weight in ((48, -1, 1), (60, -1, 1), (49, -1, 0.5), (59, -1, 0.5)):
        out[idx] += (side * dx * weight, dy * weight)
    for idx, side, weight in ((54, 1, 1), (64, 1, 1), (53, 1, 0.5), (55, 1, 0.5)):
        out[idx] += (side * dx * weight, dy * weight)
    # Brows: raise or lower; a frown also pulls the inner ends together.
    out[BROWS, 1] -= expr.brow_raise * 0.045 * fw
    if expr.brow_raise < 0:
        out[21, 0] -= expr.brow_raise * 0.015 * fw
        out[22, 0] += expr.brow_raise * 0.015 * fw
    # Eyelids: the upper lid comes down, the lower lid rises slightly; keep a sliver open.
    for up, lo in UPPER_LID_PAIRS:
        gap = pts[lo, 1] - pts[up, 1]
        out[up, 1] += expr.eye_close * 0.85 * gap
        out[lo, 1] -= expr.eye_close * 0.08 * gap
    return out


def ring(centre: np.ndarray, rx: float, ry: float, n: int) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return centre + np.stack([rx * np.cos(angles), ry * np.sin(angles)], axis=1)


def warp_expression(img: np.ndarray, pts: np.ndarray, moved: np.ndarray, fw: float) -> np.ndarray:
    """Piecewise-affine warp of a face region so that ``pts`` land on ``moved``.

    Fixed anchors on a ring around the face and on the region border keep everything outside
    the face exactly where it was, so the warped patch pastes back seamlessly.
    """
    h, w = img.shape[:2]
    centre = pts.mean(axis=0)
    half = 1.2 * fw
    x0, y0 = max(0, int(centre[0] - half)), max(0, int(centre[1] - half))
    x1, y1 = min(w, int(centre[0] + half)), min(h, int(centre[1] + half))
    roi_w, roi_h = x1 - x0, y1 - y0
    # Border anchors (corners and mid-sides) sit one pixel outside the region so every pixel
    # is inside the mesh.
    bx, by = (-1.0, roi_w / 2, float(roi_w)), (-1.0, roi_h / 2, float(roi_h))
    border = np.array([(x, y) for x in bx for y in by if (x, y) != (bx[1], by[1])])
    offset = np.array([x0, y0], dtype=np.float64)
    anchors = np.concatenate([border, ring(centre - offset, 0.82 * fw, 1.02 * fw, 16)])
    src = np.concatenate([anchors, pts - offset])
    dst = np.concatenate([anchors, moved - offset])
    src_teeth = teeth_line(pts, pts, fw)
    if src_teeth.size:  # teeth visible in the source: keep them on the upper jaw
        src = np.concatenate([src, src_teeth - offset])
        dst = np.concatenate([dst, teeth_line(pts, moved, fw) - offset])
    # The map goes from output (moved) positions back to where to sample in the input.
    tform = PiecewiseAffineTransform.from_estimate(dst, src)
    if not tform:
        return img
    # The displacement is piecewise linear and smooth, so evaluating it every 4th pixel and
    # interpolating is visually exact and ~16x cheaper than mapping every pixel.
    step = 4
    gy, gx = np.mgrid[0 : roi_h + step : step, 0 : roi_w + step : step].astype(np.float64)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    mapped = tform(grid)
    outside = np.any(mapped < 0, axis=1)  # points the mesh does not cover map to -1
    mapped[outside] = grid[outside]
    shift = (mapped - grid).reshape(*gx.shape, 2).astype(np.float32)
    shift = cv2.resize(
        shift, (gx.shape[1] * step, gx.shape[0] * step), interpolation=cv2.INTER_LINEAR
    )
    # cv2.resize aligns pixel centres, so pixel x of the region sits near x + step / 2 - 0.5.
    shift = shift[step // 2 - 1 : step // 2 - 1 + roi_h, step // 2 - 1 : step // 2 - 1 + roi_w]
    fy, fx = np.mgrid[0:roi_h, 0:roi_w].astype(np.float32)
    map_x, map_y = fx + shift[..., 0], fy + shift[..., 1]
    roi = cv2.remap(
        img[y0:y1, x0:x1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    roi = paint_mouth(roi, moved - offset, fw, lip_gap(pts))
    out = img.copy()
    out[y0:y1, x0:x1] = roi
    return out


def lip_gap(pts: np.ndarray) -> float:
    return float(pts[[65, 66, 67], 1].mean() - pts[[61, 62, 63], 1].mean())


def teeth_line(pts: np.ndarray, moved: np.ndarray, fw: float) -> np.ndarray:
    """Points along the lower edge of the upper teeth, riding with the upper lip.

    Without them, opening a smiling mouth stretches the teeth; with them the teeth stay
    rigid and the new gap opens below them.  Empty when the source mouth is closed.
    """
    upper, lower = pts[[61, 62, 63]], pts[[67, 66, 65]]
    if lip_gap(pts) < 0.03 * fw:
        return np.empty((0, 2))
    return moved[[61, 62, 63]] + 0.6 * (lower - upper)


def paint_mouth(roi: np.ndarray, pts: np.ndarray, fw: float, source_gap: float) -> np.ndarray:
    """Darken the opening between the lips, and show teeth if the source mouth was closed.

    Stretching lips apart only smears lip colour; a real open mouth is dark inside.  The
    darkening keeps some of the stretched texture and grows with how far the mouth opened.
    """
    added_gap = lip_gap(pts) - source_gap
    strength = float(np.clip(added_gap / (0.05 * fw), 0, 1))
    if strength < 0.05:
        return roi
    h, w = roi.shape[:2]
    sigma = max(0.8, 0.012 * fw)

    def poly_mask(poly: np.ndarray) -> np.ndarray:
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        return cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]

    out = roi.astype(np.float32)
    inner = poly_mask(pts[INNER_LIPS])
    # A dim red-brown that follows the photo's exposure, over a trace of the stretched texture.
    exposure = float(out.mean()) / 140
    dark = 0.25 * out + np.array([60.0, 22, 24]) * exposure
    # Dark below the upper teeth (if the source showed any), lighter near the upper lip.
    y_up = pts[[61, 62, 63], 1].mean() + 0.6 * source_gap
    y_low = pts[[65, 66, 67], 1].mean()
    depth = np.clip((np.arange(h, dtype=np.float32) - y_up) / max(y_low - y_up, 1.0), 0, 1)
    shade = (0.15 + 0.85 * depth)[:, None, None]
    out += (dark - out) * inner * shade * 0.85 * strength
    if source_gap < 0.02 * fw:  # closed in the source: paint a hint of upper teeth
        upper = pts[[60, 61, 62, 63, 64]]
        lower_edge = upper + np.array([0.0, 0.3 * lip_gap(pts)])
        teeth = np.concatenate([upper, lower_edge[::-1]])
        teeth_colour = 0.5 * out + 0.5 * np.array([225.0, 215, 200]) * exposure
        out += (teeth_colour - out) * poly_mask(teeth) * inner * 0.6 * strength
    return np.clip(out, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- geometry


def face_homography(
    centre: np.ndarray,
    scale: float,
    roll_deg: float,
    yaw_deg: float,
    out_centre: tuple[float, float],
    depth: float,
) -> np.ndarray:
    """Source -> output homography: scale about the face, turn it, tilt it, place it.

    The head turn treats the face as a plane rotated about its vertical axis and seen by a
    pinhole camera ``depth`` pixels away: the far side shrinks, like a real yaw.
    """
    to_origin = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], dtype=np.float64)
    scaling = np.diag([scale, scale, 1.0])
    yaw = np.radians(yaw_deg)
    turn = np.array([[np.cos(yaw), 0, 0], [0, 1, 0], [np.sin(yaw) / depth, 0, 1]])
    roll = np.radians(roll_deg)
    c, s = np.cos(roll), np.sin(roll)
    tilt = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    place = np.array([[1, 0, out_centre[0]], [0, 1, out_centre[1]], [0, 0, 1]])
    return place @ tilt @ turn @ scaling @ to_origin


def transform_points(pts: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)


def warp_with_fill(img: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp into the output frame; where the frame runs past the photo, continue it blurred.

    Mirroring the border would duplicate faces (tight portraits) and a hard edge looks pasted,
    so the stretched edge pixels are blurred into an out-of-focus surround instead.
    """
    w, h = size
    sharp = cv2.warpPerspective(
        img, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    inside = cv2.warpPerspective(np.ones(img.shape[:2], np.float32), matrix, size)
    if inside.min() > 0.99:
        return sharp
    feather = 0.02 * max(w, h)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8), iterations=max(1, int(feather / 2)))
    inside = cv2.GaussianBlur(inside, (0, 0), feather)[..., None]
    return sharp * inside + soft_blur(sharp, 0.08 * max(w, h)) * (1 - inside)


def head_mask(portrait: Portrait) -> np.ndarray:
    """Soft-edged ellipse over head and hair, in the portrait's own coordinates."""
    h, w = portrait.image.shape[:2]
    fw = portrait.face_width
    cx, cy = portrait.centre
    mask = np.zeros((h, w), np.float32)
    axes = (int(0.76 * fw), int(0.98 * fw))
    cv2.ellipse(mask, (int(cx), int(cy - 0.2 * fw)), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), 0.07 * fw)


# --------------------------------------------------------------------------- backgrounds


def random_colour(rng: Rng) -> np.ndarray:
    return rng.uniform(20, 235, size=3)


def linear_gradient(w: int, h: int, c0: np.ndarray, c1: np.ndarray, angle: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = (xs - w / 2) * np.cos(angle) + (ys - h / 2) * np.sin(angle)
    t = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def soft_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Wide Gaussian blur done at a quarter of the size (same look, a fraction of the cost)."""
    h, w = img.shape[:2]
    if sigma < 8:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    small = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / 4), (w, h))


def noise_texture(w: int, h: int, rng: Rng) -> np.ndarray:
    # Sum of blurred noise at a few scales, mapped between two colours: a wall or fabric look.
    field = np.zeros((h, w), np.float32)
    for sigma, weight in ((w / 12, 1.0), (w / 40, 0.5), (1.5, 0.2)):
        layer = soft_blur(rng.standard_normal((h, w)).astype(np.float32), sigma)
        field += weight * layer / max(float(layer.std()), 1e-6)
    t = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    c0, c1 = random_colour(rng), random_colour(rng)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def blurred_photo(w: int, h: int, other: np.ndarray, rng: Rng) -> np.ndarray:
    # Heavily blurred, enlarged and shifted so the other person's face can't be detected.
    zoom = rng.uniform(1.3, 1.9) * max(w / other.shape[1], h / other.shape[0])
    big = cv2.resize(other, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        big = big[:, ::-1]
    oy = int(rng.integers(0, big.shape[0] - h + 1))
    ox = int(rng.integers(0, big.shape[1] - w + 1))
    patch = big[oy : oy + h, ox : ox + w].astype(np.float32)
    return soft_blur(patch, rng.uniform(0.035, 0.06) * max(w, h))


def random_background(w: int, h: int, other: np.ndarray, rng: Rng) -> tuple[str, np.ndarray]:
    kind = str(rng.choice(["gradient", "noise", "solid", "photo"]))
    if kind == "gradient":
        bg = linear_gradient(w, h, random_colour(rng), random_colour(rng), rng.uniform(0, 6.3))
    elif kind == "noise":
        bg = noise_texture(w, h, rng)
    elif kind == "solid":
        bg = np.broadcast_to(random_colour(rng), (h, w, 3)).astype(np.float32)
    else:
        bg = blurred_photo(w, h, other, rng)
    return kind, bg.astype(np.float32)


# --------------------------------------------------------------------------- photometrics


def relight(img: np.ndarray, rng: Rng, centre: np.ndarray, fw: float) -> np.ndarray:
    """Brightness/contrast/gamma, a colour cast and a light falling off across the face."""
    out = img.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # light coming from one side
        h, w = out.shape[:2]
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        proj = ((xs - centre[0]) * np.cos(angle) + (ys - centre[1]) * np.sin(angle)) / (1.2 * fw)
        out *= (1 + rng.uniform(0.2, 0.5) * np.clip(proj, -1, 1))[..., None]
    if rng.random() < 0.5:  # colour cast (white balance off)
        out *= np.clip(1 + rng.normal(0, 0.08, 3), 0.8, 1.2).astype(np.float32)
    if rng.random() < 0.8:
        gain, contrast = rng.uniform(0.65, 1.3), rng.uniform(0.7, 1.3)
        gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.45))))
        mean = float(out.mean())
        out = np.clip((out - mean) * contrast + mean, 0, 1) * gain
        out = np.clip(out, 0, 1) ** gamma
    return np.clip(out * 255.0, 0, 255)


def motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def degrade(img: np.ndarray, rng: Rng, fw: float) -> np.ndarray:
    """Optical/motion blur and a little sensor noise."""
    roll = rng.random()
    if roll < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.6) * fw / 150)
    elif roll < 0.5:
        length = int(np.clip(round(rng.uniform(0.02, 0.05) * fw), 3, 9)) | 1
        img = cv2.filter2D(img, -1, motion_kernel(length, rng.uniform(0, np.pi)))
    if rng.random() < 0.5:  # sensor grain
        img = img + rng.normal(0, rng.uniform(1.0, 3.5), img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


# --------------------------------------------------------------------------- stills


@dataclass(frozen=True)
class Still:
    image: np.ndarray  # RGB uint8
    quality: int
    face_box: tuple[float, float, float, float]  # landmark bounding box in the output
    notes: str


def render_still(portrait: Portrait, other: np.ndarray, rng: Rng) -> Still:
    fw = portrait.face_width
    notes: list[str] = []
    expr = random_expression(rng)
    img, pts = portrait.image, portrait.points
    if not expr.is_neutral:
        moved = move_landmarks(pts, fw, expr)
        img, pts = warp_expression(img, pts, moved, fw), moved
        notes.append("expr")

    # Size: the face spans 23-43 % of the long side, never under ~100 px (HOG needs 80).
    scale = rng.uniform(0.7, 1.3)
    frac = 0.33 * scale
    long_side = int(rng.uniform(max(300.0, 100.0 / frac), 600.0))
    aspect = float(rng.choice([1.0, 0.75, 0.8, 1.25, 4 / 3]))  # width / height
    w, h = (
        (long_side, int(long_side / aspect))
        if aspect >= 1
        else (int(long_side * aspect), long_side)
    )
    fw_out = frac * long_side
    # Position: shift the face around but keep it (and most of the hair) inside the frame.
    slack_x = max(0.0, w / 2 - 0.7 * fw_out)
    slack_y = max(0.0, h / 2 - 0.9 * fw_out)
    out_centre = (
        w / 2 + rng.uniform(-0.7, 0.7) * slack_x,
        h * 0.47 + rng.uniform(-0.6, 0.6) * slack_y,
    )
    roll = rng.uniform(-20, 20) if rng.random() < 0.7 else 0.0
    yaw = rng.uniform(-25, 25) if rng.random() < 0.7 else 0.0
    matrix = face_homography(portrait.centre, fw_out / fw, roll, yaw, out_centre, 2.2 * fw_out)
    notes.append(f"roll={roll:+.0f} yaw={yaw:+.0f} face={fw_out:.0f}px")

    warped = warp_with_fill(img, matrix, (w, h))
    if rng.random() < 0.45:
        kind, bg = random_background(w, h, other, rng)
        mask = cv2.warpPerspective(head_mask(portrait), matrix, (w, h))[..., None]
        warped = warped * mask + bg * (1 - mask)
        notes.append(f"bg={kind}")

    out_pts = transform_points(pts, matrix)
    face_centre = out_pts.mean(axis=0)
    final = degrade(relight(warped, rng, face_centre, fw_out), rng, fw_out)
    quality = int(rng.integers(35, 96))
    notes.append(f"q={quality}")
    x0, y0 = out_pts.min(axis=0)
    x1, y1 = out_pts.max(axis=0)
    return Still(final.astype(np.uint8), quality, (x0, y0, x1, y1), " ".join(notes))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_stills(portrait: Portrait, other: np.ndarray, index: int) -> list[tuple[Path, Still]]:
    folder = HERE / portrait.name
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("*.jpg"):
        stale.unlink()
    written = []
    for i in range(N_STILLS):
        # One generator per image: changing one image's recipe leaves the others alone.
        rng = np.random.default_rng([SEED, index, i])
        still = render_still(portrait, other, rng)
        path = folder / f"{portrait.name}_{i:03d}.jpg"
        Image.fromarray(still.image).save(path, quality=still.quality)
        written.append((path, still))
    return written


def check_stills(name: str, written: list[tuple[Path, Still]], tools: Dlib) -> float:
    """Re-read the JPEGs and count how often HOG finds exactly the face we put there.

    Returns the worst "exactly the main face" rate over upsample 0 and 1.
    """
    worst = 1.0
    for upsample in (0, 1):
        found = exact = 0
        misses = []
        for path, still in written:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            dets = tools.detect(rgb, upsample)
            hits = [d for d in dets if iou(d, still.face_box) >= 0.3]
            found += bool(hits)
            exact += len(hits) == 1 and len(dets) == 1
            if not hits or len(dets) != 1:
                misses.append(f"{path.name} ({len(hits)} of {len(dets)} detections; {still.notes})")
        n = len(written)
        print(
            f"  {name}: upsample={upsample}: main face found {found}/{n} ({100 * found / n:.0f}%),"
            f" exactly one face {exact}/{n} ({100 * exact / n:.0f}%)"
        )
        for miss in misses:
            print(f"    not exact: {miss}")
        worst = min(worst, exact / n)
    return worst


# --------------------------------------------------------------------------- clip: signals


def syllable_envelope(rng: Rng, seconds: float, rate: int) -> np.ndarray:
    """Speech-like loudness in [0, 1]: phrases of 4-6 Hz syllables separated by pauses."""
    n = int(seconds * rate)
    env = np.zeros(n)
    t = rng.uniform(0.25, 0.45)
    while t < seconds - 0.3:
        phrase_end = min(t + rng.uniform(1.2, 2.4), seconds - 0.25)
        while t < phrase_end:
            dur = rng.uniform(0.14, 0.28)
            i0, i1 = int(t * rate), min(n, int((t + dur) * rate))
            u = np.linspace(0, 1, i1 - i0, endpoint=False)
            env[i0:i1] = np.maximum(env[i0:i1], rng.uniform(0.45, 1.0) * np.sin(np.pi * u) ** 1.5)
            t += dur + rng.uniform(0.0, 0.05)
        t += rng.uniform(0.3, 0.65)
    # ~15 ms smoothing: articulators do not move instantly.
    width = max(1, int(0.015 * rate))
    return np.convolve(env, np.ones(width) / width, mode="same")


def smooth_random(
    rng: Rng, seconds: float, rate: int, knots_per_s: float, lo: float, hi: float
) -> np.ndarray:
    """A slowly wandering value: random knots joined by cosine easing."""
    n_knots = int(seconds * knots_per_s) + 2
    knots = rng.uniform(lo, hi, n_knots)
    pos = np.arange(int(seconds * rate)) / rate * knots_per_s
    i = np.floor(pos).astype(int)
    frac = (1 - np.cos(np.pi * (pos - i))) / 2
    return knots[i] * (1 - frac) + knots[i + 1] * frac


def synth_voice(env: np.ndarray, rng: Rng) -> np.ndarray:
    """Voiced buzz: glottal harmonics through three moving formants, gated by ``env``."""
    n = env.size
    seconds = n / AUDIO_RATE
    t = np.arange(n) / AUDIO_RATE
    f0 = 150 + 14 * np.sin(2 * np.pi * 0.35 * t + rng.uniform(0, 6.3)) + 12 * (env - 0.4)
    f0 *= 1 + 0.004 * smooth_random(rng, seconds, AUDIO_RATE, 30, -1, 1)  # jitter
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    formants = [
        (smooth_random(rng, seconds, AUDIO_RATE, 5, 450, 820), 90.0, 1.0),
        (smooth_random(rng, seconds, AUDIO_RATE, 5, 1000, 2100), 120.0, 0.6),
        (smooth_random(rng, seconds, AUDIO_RATE, 2, 2400, 2900), 160.0, 0.3),
    ]
    voice = np.zeros(n)
    for k in range(1, 41):
        freq = k * f0
        gain = np.full(n, 0.04)
        for centre, bandwidth, weight in formants:
            gain += weight / (1 + ((freq - centre) / bandwidth) ** 2)
        gain *= np.clip((5000 - freq) / 1000, 0, 1)  # roll off towards 5 kHz
        voice += gain / k * np.sin(k * phase)
    breath = np.convolve(rng.standard_normal(n), [1, -0.7], mode="same")
    signal = voice * env + breath * (0.02 + 0.08 * env) * 0.3
    signal += 0.002 * rng.standard_normal(n)  # room noise
    fade = np.clip(np.minimum(t, seconds - t) / 0.01, 0, 1)
    signal *= fade
    return (0.6 * signal / np.abs(signal).max()).astype(np.float32)


def blink_curve(rng: Rng, seconds: float, rate: int) -> np.ndarray:
    """Eye closure per frame: a ~200 ms blink every 1.8-3.5 s."""
    times = np.arange(int(seconds * rate)) / rate
    closure = np.zeros_like(times)
    tb = rng.uniform(0.8, 1.5)
    while tb < seconds - 0.2:
        closure = np.maximum(closure, np.clip(1 - np.abs(times - tb) / 0.1, 0, 1))
        tb += rng.uniform(1.8, 3.5)
    return closure


# --------------------------------------------------------------------------- clip: frames


def clip_background(i: int, n: int) -> np.ndarray:
    """A gradient whose colours and direction drift slowly over the clip."""
    w, h = CLIP_SIZE
    phase = i / n
    c0 = np.array([60, 90, 130]) + 40 * np.sin(2 * np.pi * (phase + np.array([0, 0.33, 0.66])))
    c1 = np.array([200, 180, 150]) + 30 * np.cos(2 * np.pi * (phase + np.array([0.1, 0.4, 0.7])))
    return linear_gradient(w, h, c0, c1, 0.4 + 0.8 * phase).astype(np.float32)


def clip_frames(portrait: Portrait, env_frames: np.ndarray, rng: Rng) -> Iterator[np.ndarray]:
    w, h = CLIP_SIZE
    n = env_frames.size
    fw = portrait.face_width
    t = np.arange(n) / CLIP_FPS
    blink = blink_curve(rng, CLIP_SECONDS, CLIP_FPS)
    smile = smooth_random(rng, CLIP_SECONDS, CLIP_FPS, 0.5, -0.1, 0.45)
    # Slow head drift: sums of sines with random phases.
    ph = rng.uniform(0, 2 * np.pi, 6)
    cx = w / 2 + 70 * np.sin(2 * np.pi * t / 8 + ph[0]) + 20 * np.sin(2 * np.pi * t / 2.9 + ph[1])
    cy = 0.47 * h + 14 * np.sin(2 * np.pi * t / 5.1 + ph[2]) + 5 * np.sin(2 * np.pi * t / 1.7)
    face_w = 140 + 17 * np.sin(2 * np.pi * t / 7.3 + ph[3])  # 123-157 px jaw to jaw
    roll = 7 * np.sin(2 * np.pi * t / 5.3 + ph[4]) + 2.5 * np.sin(2 * np.pi * t / 2.1)
    yaw = 14 * np.sin(2 * np.pi * t / 6.7 + ph[5])
    photo_mask = np.ones(portrait.image.shape[:2], np.float32)
    photo_mask[[0, -1], :] = 0
    photo_mask[:, [0, -1]] = 0
    for i in range(n):
        expr = Expression(
            mouth_open=float(env_frames[i]) ** 0.8,
            smile=float(smile[i]),
            brow_raise=0.35 * float(env_frames[i]) - 0.05,
            eye_close=float(blink[i]),
        )
        moved = move_landmarks(portrait.points, fw, expr)
        face = warp_expression(portrait.image, portrait.points, moved, fw)
        matrix = face_homography(
            portrait.centre, face_w[i] / fw, roll[i], yaw[i], (cx[i], cy[i]), 2.2 * face_w[i]
        )
        frame = cv2.warpPerspective(face, matrix, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
        mask = cv2.warpPerspective(photo_mask, matrix, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((9, 9), np.uint8)), (0, 0), 5)[..., None]
        frame = frame * mask + clip_background(i, n) * (1 - mask)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(path: Path, portrait: Portrait) -> None:
    rng = np.random.default_rng([SEED, 99])
    env = syllable_envelope(rng, CLIP_SECONDS, AUDIO_RATE)
    audio = synth_voice(env, rng)
    n_frames = CLIP_SECONDS * CLIP_FPS
    per_frame = AUDIO_RATE // CLIP_FPS
    # The mouth follows the loudness averaged over each frame's 40 ms.
    env_frames = env[: n_frames * per_frame].reshape(n_frames, per_frame).mean(axis=1)
    env_frames /= max(float(env_frames.max()), 1e-6)

    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=CLIP_FPS)
        video.width, video.height = CLIP_SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "23", "preset": "medium"}
        voice = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        voice.bit_rate = 96_000
        audio_fmt = voice.codec_context.format.name  # "fltp" for FFmpeg's native AAC
        if audio_fmt not in ("fltp", "flt"):
            raise SystemExit(f"unexpected AAC sample format {audio_fmt}")

        sent = 0

        def send_audio(until: int) -> None:
            # Interleave: encode the audio up to the current video time, 1024 samples a frame.
            nonlocal sent
            while sent < min(until, audio.size):
                chunk = audio[sent : sent + AAC_FRAME]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format=audio_fmt, layout="mono")
                frame.sample_rate = AUDIO_RATE
                frame.pts = sent
                frame.time_base = Fraction(1, AUDIO_RATE)
                container.mux(voice.encode(frame))
                sent += chunk.size

        for i, rgb in enumerate(clip_frames(portrait, env_frames, rng)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, CLIP_FPS)
            container.mux(video.encode(frame))
            send_audio((i + 1) * per_frame)
        send_audio(audio.size)
        container.mux(video.encode(None))  # flush both encoders before the trailer
        container.mux(voice.encode(None))


def check_clip(path: Path, tools: Dlib) -> float:
    """Reopen the clip, check its streams and return the face detection rate over frames."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        n_audio = len(container.streams.audio)
        audio = container.streams.audio[0]
        duration = container.duration / av.time_base if container.duration else float("nan")
        fps = video.average_rate
        codec, layout, rate = audio.codec_context.name, audio.layout.name, audio.rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    counts = [len(tools.detect(f, 0)) for f in frames]
    found = sum(c >= 1 for c in counts)
    extra = sum(c > 1 for c in counts)
    widths = [d[2] - d[0] for f in frames[::10] for d in tools.detect(f, 0)]
    print(
        f"  clip: {len(frames)} frames, {fps} fps, {frames[0].shape[1]}x{frames[0].shape[0]},"
        f" duration {duration:.3f} s, {n_audio} audio stream ({codec}, {layout}, {rate} Hz)"
    )
    print(
        f"  clip: face found (HOG, upsample 0) in {found}/{len(frames)} frames"
        f" ({100 * found / len(frames):.1f}%), {extra} with a second detection,"
        f" face box {min(widths)}-{max(widths)} px wide"
    )
    shape_ok = len(frames) == CLIP_SECONDS * CLIP_FPS and fps == CLIP_FPS and n_audio == 1
    if not shape_ok or abs(duration - CLIP_SECONDS) > 0.1:
        raise SystemExit("clip check failed: wrong frame count, rate, duration or streams")
    return found / len(frames)


# --------------------------------------------------------------------------- main


def main() -> None:
    start = time.perf_counter()

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f} s] {text}")

    failures: list[str] = []
    tools = Dlib.load()
    a, b = load_portraits(tools)
    for p in (a, b):
        h, w = p.image.shape[:2]
        stage(f"portrait {p.name}: crop {w}x{h}, face {p.face_width:.0f} px wide")
    for index, (portrait, other) in enumerate(((a, b), (b, a))):
        written = write_stills(portrait, other.image, index)
        stage(f"stills {portrait.name}: {len(written)} written to {portrait.name}/")
        if check_stills(portrait.name, written, tools) < MIN_HIT_RATE:
            failures.append(f"stills {portrait.name}")
    clip = HERE / "clip_a.mp4"
    write_clip(clip, a)
    stage(f"clip: {clip.name} written, {clip.stat().st_size / 1e6:.2f} MB")
    if check_clip(clip, tools) < MIN_HIT_RATE:
        failures.append("clip")
    outputs = [*HERE.glob("[ab]/*.jpg"), clip]
    total = sum(p.stat().st_size for p in outputs)
    stage(f"done: {len(outputs)} files, {total / 1e6:.2f} MB")
    if failures:
        raise SystemExit(f"face detection below {MIN_HIT_RATE:.0%} for: {', '.join(failures)}")


if __name__ == "__main__":
    main()
