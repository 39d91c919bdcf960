"""Where the offline dlib models live: inside the face_recognition_models package.

That package imports pkg_resources when imported, so it is located with
importlib instead of being imported.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from engine.errors import UnavailableError

SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"
RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"


@cache
def dlib_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise UnavailableError(
            "the face_recognition_models package is not installed",
            "run: pip install face_recognition_models",
        )
    return Path(spec.origin).parent / "models"


def dlib_model(name: str) -> Path:
    path = dlib_models_dir() / name
    if not path.is_file():
        raise UnavailableError(
            f"dlib model file {name} is missing from {path.parent}",
            "reinstall face_recognition_models",
        )
    return path
