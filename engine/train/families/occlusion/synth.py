"""Synthetic occluders drawn over aligned faces: what the occlusion mask learns from.

Each occluded sample gets one or two of five kinds, placed where real ones sit:
- hand: a palm, four fingers and a thumb, textured with skin patches cut from the
  faces' own cheeks and shaded like cylinders, entering from a crop edge towards the
  mouth, chin or a cheek;
- microphone: a dark handle from the lower edge and a round mesh head (sometimes a
  foam ball) below or over the mouth;
- glasses: two rims around the eyes, a bridge and temples, sometimes tinted lenses
  (a lens counts as covering the face where its opacity is over one half);
- hair: a lock of thin curved strands across the forehead and eyes;
- shapes: ellipses, polygons and bars filled with flat colour, noise, stripes,
  gradients or crops of the pixels around the faces (hair, background, clothes,
  hands and objects near faces: the texture bank).

Edges are anti-aliased and sometimes defocused, composited "over" the face; the
occluder mask is the binarised opacity (> 0.5). Everything is drawn with OpenCV
from one numpy Generator, so a seed gives the same occluders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("hand", "microphone", "glasses", "hair", "shapes")
_KIND_WEIGHTS = np.array([0.30, 0.22, 0.13, 0.12, 0.23])
# Anchor rows: the points occluders are placed around, in crop pixels.
EYE_L, EYE_R, NOSE, MOUTH, CHIN = range(5)
N_ANCHORS = 5
_SHIFT = 4  # OpenCV's sub-pixel drawing: coordinates carry 4 fractional bits
_ONE = 1 << _SHIFT
# Skin tones (RGB, 0..1) for hands when the bank holds no skin.
_SKIN_TONES = np.array(
    [[0.95, 0.78, 0.66], [0.87, 0.67, 0.52], [0.72, 0.52, 0.38], [0.55, 0.37, 0.25],
     [0.38, 0.25, 0.17], [0.93, 0.72, 0.62]],
    np.float32,
)  # fmt: skip
_HAIR_TONES = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.45, 0.30, 0.16], [0.80, 0.66, 0.42],
     [0.55, 0.22, 0.10], [0.6, 0.6, 0.6]],
    np.float32,
)  # fmt: skip


def anchors_from_landmarks(points: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks in crop pixels → (5, 2) anchors: eye centres, nose tip, mouth, chin."""
    pts = points.astype(np.float32)
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48:68].mean(0), pts[8]])


def flip_anchors(anchors: np.ndarray, size: int) -> np.ndarray:
    """Anchors of the mirrored crop (eyes swap sides, so left stays image-left)."""
    out = anchors.copy()
    out[..., 0] = size - 1 - out[..., 0]
    out[..., [EYE_L, EYE_R], :] = out[..., [EYE_R, EYE_L], :]
    return out


# ---- the texture bank ---------------------------------------------------------------------


@dataclass
class TextureBank:
    """Real pixels to dress occluders in: `scenes` (K, T, T, 3) uint8 crops of what
    surrounds the faces (outside their hulls), `skin` (M, t, t, 3) uint8 cheek patches."""

    scenes: np.ndarray
    skin: np.ndarray

    @classmethod
    def empty(cls, size: int) -> TextureBank:
        t, ts = _bank_sizes(size)
        return cls(np.zeros((0, t, t, 3), np.uint8), np.zeros((0, ts, ts, 3), np.uint8))


def _bank_sizes(size: int) -> tuple[int, int]:
    return max(8, size // 4), max(4, size // 12)


def texture_bank(
    faces: np.ndarray,
    hulls: np.ndarray,
    anchors: np.ndarray,
    rng: np.random.Generator,
    per_face: int = 3,
    limit: int = 2048,
) -> TextureBank:
    """Cut the bank from (N, S, S, 3) uint8 faces, their (N, S, S) hull masks and anchors:
    up to `per_face` square crops lying (almost) wholly outside each hull, and each
    face's two cheek patches where they lie wholly inside it."""
    n, size = len(faces), faces.shape[1]
    t, ts = _bank_sizes(size)
    order = rng.permutation(n)[: max(1, limit // max(per_face, 1))] if n else []
    scenes, skin = [], []
    for i in order:
        outside = hulls[i] < 128
        kept = 0
        for _ in range(4 * per_face):
            if kept == per_face or len(scenes) >= limit:
                break
            x, y = rng.integers(0, size - t + 1, 2)
            if outside[y : y + t, x : x + t].mean() > 0.9:
                scenes.append(faces[i, y : y + t, x : x + t])
                kept += 1
        eye_l, eye_r, _, mouth, _ = anchors[i]
        d = float(np.linalg.norm(eye_r - eye_l))
        half = max(2, round(0.15 * d))
        for eye, other in ((eye_l, eye_r), (eye_r, eye_l)):
            cx, cy = np.round(0.5 * (eye + mouth) + 0.15 * (eye - other)).astype(int)
            box = (slice(cy - half, cy + half), slice(cx - half, cx + half))
            if min(cy, cx) < half or max(cy, cx) + half > size:
                continue
            if (hulls[i][box] >= 128).mean() >= 0.95:
                skin.append(cv2.resize(faces[i][box], (ts, ts), interpolation=cv2.INTER_AREA))
    bank = TextureBank.empty(size)
    if scenes:
        bank.scenes = np.stack(scenes[:limit])
    if skin:
        bank.skin = np.stack(skin[:limit])
    return bank


# ---- fills: (S, S, 3) float32 colour fields in [0, 1] --------------------------------------


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, 3).astype(np.float32)


def _noise_fill(size: int, rng: np.random.Generator) -> np.ndarray:
    base = _colour(rng)
    cells = int(rng.integers(2, max(3, size // 4)))
    noise = rng.normal(0.0, rng.uniform(0.05, 0.3), (cells, cells, 3)).astype(np.float32)
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    return base + noise


def _stripes_fill(size: int, rng: np.random.Generator) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(3, max(4.0, size / 4))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = (xx * math.cos(angle) + yy * math.sin(angle)) * (2 * math.pi / period)
    w = (0.5 + 0.5 * np.sin(phase))[..., None]
    if rng.random() < 0.5:
        w = (w > 0.5).astype(np.float32)
    return a * w + b * (1 - w)


def _gradient_fill(size: int, rng: np.random.Generator) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    w = (xx * math.cos(angle) + yy * math.sin(angle)) / math.sqrt(2) + 0.5
    return a * w[..., None] + b * (1 - w[..., None])


def _tile(patch: np.ndarray, size: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A patch (k, k, 3) uint8, scaled and mirrored, tiled over (S, S, 3) float32."""
    patch = np.rot90(patch, int(rng.integers(4)))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    k = max(2, round(patch.shape[0] * scale))
    patch = cv2.resize(np.ascontiguousarray(patch), (k, k), interpolation=cv2.INTER_LINEAR)
    # Mirrored tiles: no seams where they meet.
    quad = np.concatenate([patch, patch[:, ::-1]], 1)
    quad = np.concatenate([quad, quad[::-1]], 0)
    reps = size // (2 * k) + 2
    tiled = np.tile(quad, (reps, reps, 1))
    oy, ox = rng.integers(0, 2 * k, 2)
    return tiled[oy : oy + size, ox : ox + size].astype(np.float32) / 255


def _bank_fill(size: int, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    patch = bank.scenes[int(rng.integers(len(bank.scenes)))]
    return _tile(patch, size, rng.uniform(1.0, 3.0) * size / 4 / patch.shape[0], rng)


def _texture(size: int, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    choices = ["flat", "noise", "stripes", "gradient"] + ["bank"] * (3 if len(bank.scenes) else 0)
    kind = choices[int(rng.integers(len(choices)))]
    if kind == "bank":
        fill = _bank_fill(size, rng, bank)
    elif kind == "noise":
        fill = _noise_fill(size, rng)
    elif kind == "stripes":
        fill = _stripes_fill(size, rng)
    elif kind == "gradient":
        fill = _gradient_fill(size, rng)
    else:
        fill = np.broadcast_to(_colour(rng), (size, size, 3)).copy()
    return np.clip(fill, 0.0, 1.0)


def _skin(size: int, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    if len(bank.skin):
        patch = bank.skin[int(rng.integers(len(bank.skin)))]
        fill = _tile(patch, size, rng.uniform(1.5, 4.0), rng)
        fill = cv2.GaussianBlur(fill, (0, 0), max(0.5, size / 96))  # no visible tiles
    else:
        tone = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
        fill = np.broadcast_to(tone, (size, size, 3)).copy()
    # The hand under other light than the face, and a little grain.
    fill = fill * rng.uniform(0.75, 1.2) + rng.normal(0, 0.015, fill.shape).astype(np.float32)
    return np.clip(fill, 0.0, 1.0).astype(np.float32)


# ---- drawing ----------------------------------------------------------------------------


class _Canvas:
    """An occluder being drawn: premultiplied colour and opacity, composited "over"."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.colour = np.zeros((size, size, 3), np.float32)
        self.alpha = np.zeros((size, size), np.float32)

    def add(self, shape: np.ndarray, fill: np.ndarray, opacity: float = 1.0) -> None:
        """Lay `fill` (S, S, 3) where `shape` (S, S) uint8 coverage is, over what is there."""
        x, y, w, h = cv2.boundingRect(shape)  # only where the shape is: most are small
        if not w:
            return
        box = (slice(y, y + h), slice(x, x + w))
        a = shape[box].astype(np.float32) * (opacity / 255)
        self.colour[box] = self.colour[box] * (1 - a[..., None]) + fill[box] * a[..., None]
        self.alpha[box] = self.alpha[box] * (1 - a) + a


def _p(point: np.ndarray | tuple[float, float]) -> tuple[int, int]:
    return round(float(point[0]) * _ONE), round(float(point[1]) * _ONE)


def _blank(size: int) -> np.ndarray:
    return np.zeros((size, size), np.uint8)


def _ellipse(
    shape: np.ndarray, centre: np.ndarray, axes: tuple[float, float], angle: float, thick: int = -1
) -> np.ndarray:
    ax = (max(1, round(axes[0] * _ONE)), max(1, round(axes[1] * _ONE)))
    cv2.ellipse(shape, _p(centre), ax, math.degrees(angle), 0, 360, 255, thick, cv2.LINE_AA, _SHIFT)
    return shape


def _capsule(shape: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float) -> np.ndarray:
    """A thick segment with round ends (a finger, a handle, an arm)."""
    r = max(0.5, width / 2)
    direction = p1 - p0
    length = float(np.hypot(*direction)) or 1.0
    normal = np.array([-direction[1], direction[0]]) / length * r
    quad = np.array([p0 + normal, p1 + normal, p1 - normal, p0 - normal])
    cv2.fillPoly(shape, [np.round(quad * _ONE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    for end in (p0, p1):
        cv2.circle(shape, _p(end), round(r * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
    return shape


def _polyline(shape: np.ndarray, points: np.ndarray, thick: int, closed: bool = False) -> None:
    pts = np.round(points * _ONE).astype(np.int32)
    cv2.polylines(shape, [pts], closed, 255, max(1, thick), cv2.LINE_AA, _SHIFT)


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _cylinder_shade(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darker towards a part's outline (a finger is round), lit from one side."""
    inside = (shape >= 128).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    depth = float(dist.max()) or 1.0
    shade = 0.68 + 0.32 * np.sqrt(np.clip(dist / depth, 0, 1))
    return (shade * rng.uniform(0.9, 1.1)).astype(np.float32)[..., None]


def _face_scale(anchors: np.ndarray, size: int) -> float:
    """The eye distance in pixels (a fallback for faces whose eyes overlap)."""
    return max(float(np.linalg.norm(anchors[EYE_R] - anchors[EYE_L])), size * 0.15)


def _hand(canvas: _Canvas, anchors: np.ndarray, rng: np.random.Generator, bank: TextureBank):
    size = canvas.size
    d = _face_scale(anchors, size)
    cheeks = [0.5 * (anchors[e] + anchors[MOUTH]) for e in (EYE_L, EYE_R)]
    targets = [anchors[MOUTH], anchors[CHIN], *cheeks, anchors[NOSE]]
    target = targets[int(rng.choice(len(targets), p=[0.3, 0.25, 0.17, 0.17, 0.11]))]
    target = target + rng.normal(0, 0.15 * d, 2)
    # From which edge the hand comes: mostly below, else a side, rarely above.
    base = [math.pi / 2, 0.0, math.pi, math.pi / 4, 3 * math.pi / 4, -math.pi / 2]
    entry = base[int(rng.choice(6, p=[0.35, 0.17, 0.17, 0.12, 0.12, 0.07]))]
    entry += rng.normal(0, 0.25)
    u = np.array([math.cos(entry), math.sin(entry)])  # from the target towards the edge
    w = np.array([-u[1], u[0]])
    palm_w = d * rng.uniform(0.6, 0.9)
    palm_h = palm_w * rng.uniform(1.0, 1.25)
    centre = target + u * palm_h * rng.uniform(0.5, 1.3)
    skin = _skin(size, rng, bank)
    parts: list[np.ndarray] = []
    # The wrist and forearm run off the crop's edge.
    parts.append(_capsule(_blank(size), centre, centre + u * 2 * size, palm_w * 0.8))
    parts.append(_ellipse(_blank(size), centre, (palm_h / 2, palm_w / 2), entry))
    reach = -u
    curl = rng.uniform(0.35, 1.0) if rng.random() < 0.3 else 1.0  # a half-closed hand
    side = 1.0 if rng.random() < 0.5 else -1.0
    finger_w = palm_w * rng.uniform(0.17, 0.23)
    thumb_dir = _rotate(reach, side * rng.uniform(0.7, 1.3))
    thumb_base = centre + w * side * palm_w * 0.35
    parts.append(
        _capsule(_blank(size), thumb_base, thumb_base + thumb_dir * d * 0.55, finger_w * 1.1)
    )
    spread = rng.uniform(0.03, 0.16)
    for k, share in enumerate((0.85, 1.0, 0.95, 0.75)):
        offset = (k - 1.5) * palm_w * 0.23 * -side
        base_pt = centre - u * palm_h * 0.35 + w * offset
        direction = _rotate(reach, (k - 1.5) * spread * -side + rng.normal(0, 0.04))
        length = d * rng.uniform(0.7, 0.95) * share * curl
        parts.append(_capsule(_blank(size), base_pt, base_pt + direction * length, finger_w))
    flat = rng.random() < 0.25  # in flat light (or a glove) a hand shows no roundness
    for shape in parts:
        canvas.add(shape, skin if flat else skin * _cylinder_shade(shape, rng))


def _microphone(canvas: _Canvas, anchors: np.ndarray, rng: np.random.Generator, bank: TextureBank):
    size = canvas.size
    d = _face_scale(anchors, size)
    head = anchors[MOUTH] + np.array([rng.uniform(-0.6, 0.6) * d, rng.uniform(0.1, 1.0) * d])
    radius = d * rng.uniform(0.35, 0.6)
    end = np.array([head[0] + rng.uniform(-0.4, 0.4) * size, size * 1.6])
    grey = rng.uniform(0.03, 0.25)
    body = np.full((size, size, 3), grey, np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    handle = _capsule(_blank(size), head, end, radius * rng.uniform(0.55, 0.85))
    canvas.add(handle, np.clip(body * _cylinder_shade(handle, rng) * 1.3, 0, 1))
    ball = _ellipse(_blank(size), head, (radius, radius * rng.uniform(0.9, 1.1)), 0.0)
    if rng.random() < 0.3:  # a foam windscreen: bigger, coloured, soft grain
        foam = _colour(rng) * rng.uniform(0.2, 1.0) if rng.random() < 0.6 else np.full(3, 0.06)
        fill = foam + rng.normal(0, 0.04, (size, size, 3))
        ball = _ellipse(_blank(size), head, (radius * 1.3, radius * 1.3), 0.0)
    else:  # a steel mesh grille: light metal crossed by dark wires
        metal = rng.uniform(0.3, 0.75)
        period = max(2.0, radius / rng.uniform(2.5, 5.0))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        wires = (np.sin(2 * math.pi * (xx + yy) / period) > 0.6) | (
            np.sin(2 * math.pi * (xx - yy) / period) > 0.6
        )
        grain = rng.normal(0, 0.02, (size, size, 3))
        fill = np.where(wires[..., None], metal * 0.35, metal) + grain
    canvas.add(ball, np.clip(fill * _cylinder_shade(ball, rng), 0, 1).astype(np.float32))


def _glasses(canvas: _Canvas, anchors: np.ndarray, rng: np.random.Generator, bank: TextureBank):
    size = canvas.size
    eye_l, eye_r = anchors[EYE_L], anchors[EYE_R]
    d = _face_scale(anchors, size)
    across = (eye_r - eye_l) / (float(np.linalg.norm(eye_r - eye_l)) or 1.0)
    angle = math.atan2(across[1], across[0])
    a = d * rng.uniform(0.36, 0.48)
    b = a * rng.uniform(0.55, 0.85)
    thick = max(2, round(d * rng.uniform(0.04, 0.09)))
    frame = _colour(rng) * 0.4 if rng.random() < 0.7 else _colour(rng)
    lift = np.array([-across[1], across[0]]) * rng.uniform(-0.1, 0.1) * d
    centres = [eye_l + lift, eye_r + lift]
    if rng.random() < 0.4:  # tinted lenses: covering where their opacity exceeds one half
        tint = np.full((size, size, 3), rng.uniform(0.0, 0.3), np.float32)
        for c in centres:
            lens = _ellipse(_blank(size), c, (a, b), angle)
            canvas.add(lens, tint, opacity=float(rng.uniform(0.3, 0.95)))
    rims = _blank(size)
    for c in centres:
        _ellipse(rims, c, (a, b), angle, thick)
    inner_l, inner_r = centres[0] + across * a, centres[1] - across * a
    _polyline(rims, np.array([inner_l, inner_r]), thick)
    # The temples run from the outer rims out towards the ears.
    for c, out in ((centres[0], -across), (centres[1], across)):
        start = c + out * a
        _polyline(rims, np.array([start, start + out * size * 0.5]), thick)
    canvas.add(rims, np.broadcast_to(frame, (size, size, 3)).astype(np.float32))


def _hair(canvas: _Canvas, anchors: np.ndarray, rng: np.random.Generator, bank: TextureBank):
    size = canvas.size
    d = _face_scale(anchors, size)
    tone = _HAIR_TONES[int(rng.integers(len(_HAIR_TONES)))]
    side = anchors[EYE_L] if rng.random() < 0.5 else anchors[EYE_R]
    root = np.array([side[0] + rng.normal(0, 0.3 * d), -0.05 * size])
    tip = side + np.array([rng.normal(0, 0.4 * d), rng.uniform(0.0, 1.6) * d])
    bend = rng.normal(0, 0.6 * d, 2)
    t = np.linspace(0, 1, 24)[:, None]
    for _ in range(int(rng.integers(4, 14))):
        jitter = rng.normal(0, 0.2 * d, (3, 2))
        p0, p2 = root + jitter[0], tip + jitter[2]
        p1 = 0.5 * (p0 + p2) + bend + jitter[1]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        shape = _blank(size)
        _polyline(shape, curve, max(1, round(size / 128 * rng.uniform(1.0, 3.0))))
        colour = np.clip(tone * rng.uniform(0.8, 1.2), 0, 1).astype(np.float32)
        canvas.add(shape, np.broadcast_to(colour, (size, size, 3)))


def _shapes(canvas: _Canvas, anchors: np.ndarray, rng: np.random.Generator, bank: TextureBank):
    size = canvas.size
    d = _face_scale(anchors, size)
    lo, hi = anchors.min(0) - 0.4 * d, anchors.max(0) + 0.4 * d
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(lo, hi)
        extent = d * rng.uniform(0.3, 1.1)
        angle = rng.uniform(0, math.pi)
        shape = _blank(size)
        kind = int(rng.integers(3))
        if kind == 0:
            _ellipse(shape, centre, (extent, extent * rng.uniform(0.3, 1.0)), angle)
        elif kind == 1:
            n = int(rng.integers(3, 8))
            turns = np.sort(rng.uniform(0, 2 * math.pi, n))
            radii = extent * rng.uniform(0.4, 1.0, n)
            poly = centre + np.stack([np.cos(turns) * radii, np.sin(turns) * radii], 1)
            cv2.fillPoly(shape, [np.round(poly * _ONE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
        else:  # a bar, e.g. a pen, a strap, a cup's edge: often running off the crop
            axis = np.array([math.cos(angle), math.sin(angle)]) * extent * rng.uniform(1.0, 3.0)
            _capsule(shape, centre - axis, centre + axis, extent * rng.uniform(0.15, 0.5))
        canvas.add(shape, _texture(size, rng, bank))


_DRAW = {
    "hand": _hand,
    "microphone": _microphone,
    "glasses": _glasses,
    "hair": _hair,
    "shapes": _shapes,
}


@dataclass
class Occluder:
    """One sample's occluder: premultiplied colour (S, S, 3) and opacity (S, S), in [0, 1]."""

    colour: np.ndarray
    alpha: np.ndarray
    kinds: tuple[str, ...]

    @property
    def mask(self) -> np.ndarray:
        """Where it covers the face: (S, S) bool."""
        return self.alpha > 0.5


def pick_kinds(rng: np.random.Generator) -> tuple[str, ...]:
    """One kind, or two different ones now and then."""
    count = 2 if rng.random() < 0.3 else 1
    picked = rng.choice(len(KINDS), size=count, replace=False, p=_KIND_WEIGHTS)
    return tuple(KINDS[int(i)] for i in picked)


def draw(
    size: int,
    anchors: np.ndarray,
    rng: np.random.Generator,
    bank: TextureBank,
    kinds: tuple[str, ...] | None = None,
) -> Occluder:
    """An occluder for one (S, S) face with (5, 2) `anchors`; kinds drawn when not given."""
    kinds = kinds or pick_kinds(rng)
    canvas = _Canvas(size)
    for kind in kinds:
        _DRAW[kind](canvas, anchors, rng, bank)
    colour, alpha = canvas.colour, canvas.alpha
    if rng.random() < 0.25:  # out of focus: a nearer object is often blurred
        sigma = rng.uniform(0.3, 1.0) * size / 64
        colour = cv2.GaussianBlur(colour, (0, 0), sigma)
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    # Clean edges: opacity too faint to change a pixel's value counts as none.
    alpha = np.where(alpha < 1 / 512, 0.0, np.clip(alpha, 0.0, 1.0)).astype(np.float32)
    colour = np.where(alpha[..., None] > 0, colour, 0.0).astype(np.float32)
    return Occluder(colour, alpha, kinds)


def composite(image: np.ndarray, occluder: Occluder) -> np.ndarray:
    """(S, S, 3) uint8 face with the occluder over it; pixels it leaves uncovered are kept."""
    a = occluder.alpha[..., None]
    over = image.astype(np.float32) / 255 * (1 - a) + occluder.colour
    out = np.clip(over * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.where(a > 0, out, image)


def occlude(
    images: np.ndarray,
    anchors: np.ndarray,
    rng: np.random.Generator,
    bank: TextureBank,
    share: float = 1.0,
    kinds: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Occlude a share of (N, S, S, 3) uint8 faces with (N, 5, 2) anchors; returns the
    faces (copied) and (N, S, S) bool occluder masks (all False where none was drawn)."""
    out = images.copy()
    masks = np.zeros(images.shape[:3], bool)
    size = images.shape[1]
    for i in range(len(images)):
        if rng.random() >= share:
            continue
        occluder = draw(size, anchors[i], rng, bank, kinds)
        out[i] = composite(images[i], occluder)
        masks[i] = occluder.mask
    return out, masks
