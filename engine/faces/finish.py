"""The per-face work that runs in worker processes during extraction.

dlib's recognition network holds the GIL, so it gets processes of its own
while the main process detects faces in the next frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.faces.identity import Embedder

_embedder: Embedder | None = None


def init_worker() -> None:
    global _embedder
    # One core per worker: the pool already spreads work over the cores.
    cv2.setNumThreads(1)
    _embedder = Embedder()


def encode_png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def finish_face(crop: np.ndarray, chip: np.ndarray) -> tuple[bytes, np.ndarray]:
    """PNG bytes of the aligned crop, and the face's identity embedding."""
    global _embedder
    if _embedder is None:
        _embedder = Embedder()
    return encode_png(crop), _embedder.embed_chip(chip)
