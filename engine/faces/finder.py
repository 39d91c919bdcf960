"""Finding faces frame by frame: detect, fit landmarks, follow, notice cuts.

This is the one place swapdeck finds faces in frames. Extract, convert (when no
faceset holds the video's faces) and score all use it, so they find exactly
the same faces. Detection runs batched on a thread of its own: the detectors
release the GIL, so detecting the next frames overlaps with the landmarks of
this one and with whatever the caller does with it. Landmarks and tracking run
in the caller's thread, a frame at a time as it asks for the next, so between
two frames the tracker holds the state after the frame just handed out (what
extract saves to resume from). On video a face is followed through detector
misses (engine.faces.tracking), and a hard cut (engine.media.shots) ends every
track; each frame says whether it starts a new shot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from engine.events import CancelToken, Info, Sink, null_sink
from engine.faces.backends import BackendChoice, FaceBackend, choose_backend, load_backend
from engine.faces.tracking import Track, Tracker
from engine.faces.types import Detection, FoundFace
from engine.media.prefetch import prefetch

P = TypeVar("P")

# Tracks to carry on from when the tracker restarts at a frame, and the highest
# track id already given out (see Tracker.reset).
Resume = Callable[[int], tuple[list[Track], int]]

# Frames detected ahead of the one being tracked.
_DETECT_AHEAD = 3


@dataclass
class FoundFrame(Generic[P]):
    """One frame's faces, as FaceFinder.stream hands them out."""

    index: int
    image: np.ndarray | None  # None: the frame could not be read (it has no faces)
    payload: P  # whatever the caller sent along with the frame
    faces: list[FoundFace]  # at least min_face, left to right
    small: int = 0  # faces found but smaller than min_face, left out of `faces`
    cut: bool = False  # on video: the first frame of a new shot (every track ended)


class FaceFinder:
    """Faces in frames, left to right; on video, followed through detector misses."""

    def __init__(
        self,
        backend: str = "auto",
        detector: str = "hog",
        device: str = "auto",
        min_face: int = 40,
        sink: Sink = null_sink,
    ) -> None:
        self.choice: BackendChoice = choose_backend(backend, detector)
        if self.choice.name == "fan":
            from engine.faces.backends.fan import fan_weights_status

            present, where = fan_weights_status()
            if not present:
                sink(Info(message=f"face-alignment will download its weights to {where}"))
        self.backend: FaceBackend = load_backend(self.choice.name, detector, device)
        self.backend.set_min_face(min_face)
        self.min_face = min_face
        self.tracker = Tracker(self.backend)

    def reset(self) -> None:
        """Forget the faces followed so far (a new video, or a jump in time)."""
        self.tracker.reset()

    def find(self, image: np.ndarray, video: bool) -> list[FoundFace]:
        """The faces in one image (on video, followed from the frame found before it)."""
        return self._faces(image, self.backend.detect_batch([image])[0], video)[0]

    def stream(
        self,
        frames: Iterable[tuple[int, np.ndarray | None, P]],
        video: bool,
        *,
        every: int = 1,
        resume: Resume | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[FoundFrame[P]]:
        """The faces of each (index, pixels, payload) of `frames`, in order.

        On video the tracker starts afresh at the first frame and at any frame that
        does not follow the one before (`every` indices on): from `resume(index)`
        when given (extract carries on from the tracks it saved), else from
        nothing. A frame whose pixels are None comes out with no faces and leaves
        the tracker alone. Stops early, between frames, once `cancel` is set.
        """
        previous: int | None = None
        for index, image, payload, detections in prefetch(
            self._detected(frames, cancel), depth=_DETECT_AHEAD
        ):
            if cancel is not None and cancel.cancelled:
                return
            if image is None:
                yield FoundFrame(index, None, payload, [])
                continue
            if video and previous != index - every:
                tracks, last_id = resume(index) if resume is not None else ([], -1)
                self.tracker.reset(tracks, last_id)
            previous = index
            faces, small = self._faces(image, detections, video)
            yield FoundFrame(index, image, payload, faces, small, cut=video and self.tracker.cut)

    def _detected(
        self, frames: Iterable[tuple[int, np.ndarray | None, P]], cancel: CancelToken | None
    ) -> Iterator[tuple[int, np.ndarray | None, P, list[Detection]]]:
        """The detector run over frames in batches (the GPU backend likes that)."""
        batch: list[tuple[int, np.ndarray | None, P]] = []
        size = max(1, self.backend.batch_size)

        def flush() -> Iterator[tuple[int, np.ndarray | None, P, list[Detection]]]:
            images = [img for _, img, _ in batch if img is not None]
            found = iter(self.backend.detect_batch(images) if images else [])
            for index, img, payload in batch:
                yield index, img, payload, (next(found) if img is not None else [])
            batch.clear()

        for item in frames:
            if cancel is not None and cancel.cancelled:
                break
            batch.append(item)
            if len(batch) >= size:
                yield from flush()
        yield from flush()

    def _faces(
        self, image: np.ndarray, detections: list[Detection], video: bool
    ) -> tuple[list[FoundFace], int]:
        """Landmarks for the detections (on video, followed faces added); the faces of at
        least min_face left to right, and how many smaller ones were left out."""
        if video:
            faces = self.tracker.step(image, detections)
        else:
            boxes = [d.box for d in detections]
            faces = [
                FoundFace(box=d.box, landmarks=lm, score=d.score)
                for d, lm in zip(detections, self.backend.landmarks(image, boxes), strict=True)
            ]
        kept = [f for f in faces if f.size >= self.min_face]
        kept.sort(key=lambda f: (float(f.box[0]), float(f.box[1])))
        return kept, len(faces) - len(kept)
