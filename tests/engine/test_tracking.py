"""Following a face into a frame where the detector misses it."""

from __future__ import annotations

import numpy as np
from skimage import data

from engine.faces.backends.dlib_backend import DlibBackend
from engine.faces.tracking import Tracker


def test_a_missed_face_is_followed_and_a_vanished_one_is_not():
    backend = DlibBackend()
    image = data.astronaut()
    tracker = Tracker(backend)
    first = tracker.step(image, backend.detect(image))
    main = max(first, key=lambda f: f.size)
    assert not main.tracked

    # The face moves a little and the detector misses it: the tracker follows it.
    moved = np.roll(image, (4, 6), axis=(0, 1))
    followed = tracker.step(moved, [])
    assert any(f.tracked for f in followed)
    best = max(followed, key=lambda f: f.size)
    shift = (best.landmarks - main.landmarks).mean(axis=0)
    assert np.allclose(shift, (6, 4), atol=2.5)

    # The face is gone: nothing face-like remains, so nothing is kept.
    blank = np.full_like(image, 127)
    assert tracker.step(blank, []) == []
    assert tracker.tracks == []


def test_a_detection_takes_precedence_over_its_track():
    backend = DlibBackend()
    image = data.astronaut()
    tracker = Tracker(backend)
    detections = backend.detect(image)
    tracker.step(image, detections)
    again = tracker.step(image, detections)
    assert len(again) == len(detections)
    assert not any(f.tracked for f in again)
