"""dlib: HOG or CNN (MMOD) detector and the 68-point shape predictor, fully offline."""

from __future__ import annotations

import math

import numpy as np

from engine.errors import UnavailableError
from engine.faces.backends.base import FaceBackend
from engine.faces.models import CNN_DETECTOR, SHAPE_68, dlib_model
from engine.faces.types import Detection

# The smallest face HOG sees without upsampling, as a detector box side. HOG's
# 80 px window draws boxes of 72 px at its finest scale, and on the real footage
# (talk_d0/3/6/9/13 shrunk so that the full-size box would be N px) it finds
# 98-100 % of faces at N >= 62, 84 % at 58, 52 % at 54, none at 40. A 72 px
# box corresponds to a landmark span (larger side) of about 61 px.
HOG_MIN_FACE = 62
# The CNN (MMOD) detector's is left at its documented 80 px (not measured here).
CNN_MIN_FACE = 80


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise UnavailableError(
            f"dlib is not importable ({exc})", "run: pip install dlib-bin"
        ) from None
    return dlib


def upsample_for(min_face: int, smallest: int = HOG_MIN_FACE) -> int:
    """How many 2x upsamplings a detector that sees `smallest` px faces needs for `min_face`."""
    if min_face >= smallest:
        return 0
    return min(2, math.ceil(math.log2(smallest / max(min_face, 1))))


class DlibBackend(FaceBackend):
    name = "dlib"

    def __init__(self, detector: str = "hog", min_face: int = HOG_MIN_FACE) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.detector_kind = detector
        self.set_min_face(min_face)
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(str(dlib_model(CNN_DETECTOR)))
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model(SHAPE_68)))

    def set_min_face(self, min_face: int) -> None:
        smallest = CNN_MIN_FACE if self.detector_kind == "cnn" else HOG_MIN_FACE
        self.upsample = upsample_for(min_face, smallest)

    def describe(self) -> str:
        det = "CNN (MMOD)" if self.detector_kind == "cnn" else "HOG"
        cuda = "CUDA" if getattr(self._dlib, "DLIB_USE_CUDA", False) else "CPU"
        return f"dlib {det} detector + 68-point shape predictor on {cuda}"

    def detect(self, image: np.ndarray) -> list[Detection]:
        if self.detector_kind == "cnn":
            found = self._cnn(image, self.upsample)
            rects = [(d.rect, float(d.confidence)) for d in found]
        else:
            boxes, scores, _ = self._hog.run(image, self.upsample, 0.0)
            rects = list(zip(boxes, scores, strict=True))
        return [
            Detection(
                np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float32), float(s)
            )
            for r, s in rects
        ]

    def landmarks(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for box in boxes:
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            shape = self._predictor(image, self._dlib.rectangle(x0, y0, x1, y1))
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            out.append(pts)
        return out
