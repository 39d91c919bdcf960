"""Square face crops as FOMM sees faces: one still box per portrait, one steady box per shot.

FOMM is trained on (and so expects) frames in which the head sits in the
middle of a square with room around it, and the crop must not move within a
shot: a box that followed the face would cancel the very motion the model is
meant to copy. So, as the authors' data preparation does, a video is split
into shots, the main person's face boxes are joined over the whole shot, and
that union, grown by a face-relative margin, is made square: one box per shot.

Framing (decided here; the authors grow their detector's tube box by 10 % of
its size, which on their VoxCeleb boxes leaves the head about half the crop):
a face's region is the box dlib's detector would draw (brow to chin, from the
landmarks) joined with all its landmarks; the square's side is the shot's union
of regions plus (GROW - 1) face boxes, so a still face's box fills about
1 / GROW = 50 % of the side, and its centre sits RAISE face boxes above the
union's so the top of the head has room. A square larger than the picture is
shrunk to the picture's shorter side, and kept off any other person's face by
shrinking too, but never below MIN_GROW times the union (the face stays whole);
a square that fits is slid inside the picture rather than padded; what still
falls outside is filled by repeating the border pixels. Landmarks guessed past
the picture's edge (a chin below the frame) get no room.

Box coordinates are whole pixels, so cutting, pasting and the landmark
conversions agree exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from engine.errors import CancelledError, NoFacesError
from engine.events import CancelToken
from engine.faces.finder import FaceFinder
from engine.faces.types import FoundFace, box_from_landmarks
from engine.media.shots import ShotCuts

# The square's side in face boxes, and how far (in face boxes) its centre sits above the face's.
GROW = 2.0
RAISE = 0.15
# Never shrink a square (to fit the picture) below this many face extents: the face stays whole.
MIN_GROW = 1.15
# Another person's face is kept out of the square when at least this size (in face boxes).
OTHER_FACE = 0.5
# Faces are looked for on every EVERY-th frame of a video (cuts on every frame).
EVERY = 2
# Frames kept per shot for training: a longer shot is sampled evenly over its whole length.
MAX_CLIP_FRAMES = 300

Person = Literal["main", "left", "right"]


@dataclass(frozen=True)
class CropBox:
    """A square region of a picture, `side` pixels wide, its top-left at (left, top).

    It may reach outside the picture; cutting fills that part from the border.
    """

    left: float
    top: float
    side: float

    def _pixels(self) -> tuple[int, int, int]:
        return round(self.left), round(self.top), max(1, round(self.side))

    def cut(self, image: np.ndarray, size: int) -> np.ndarray:
        """The region as a (size, size, 3) uint8 picture."""
        x0, y0, side = self._pixels()
        h, w = image.shape[:2]
        # The part inside the picture, then the border repeated for the rest.
        ix0, iy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        ix1, iy1 = max(min(x0 + side, w), ix0 + 1), max(min(y0 + side, h), iy0 + 1)
        region = image[iy0:iy1, ix0:ix1]
        pads = (iy0 - y0, y0 + side - iy1, ix0 - x0, x0 + side - ix1)
        if any(pads):
            region = cv2.copyMakeBorder(region, *(max(0, p) for p in pads), cv2.BORDER_REPLICATE)
            region = region[:side, :side]
        shrink = side > size
        out = cv2.resize(
            np.ascontiguousarray(region),
            (size, size),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
        )
        return out if out.ndim == 3 else np.repeat(out[..., None], 3, axis=2)

    def from_frame(self, points: np.ndarray, size: float = 1.0) -> np.ndarray:
        """Picture coordinates → coordinates in a `size`-px cut (size 1: the box's unit square)."""
        x0, y0, side = self._pixels()
        return ((np.asarray(points, np.float32) - (x0, y0)) * (size / side)).astype(np.float32)

    def to_frame(self, points: np.ndarray, size: float = 1.0) -> np.ndarray:
        """Coordinates in a `size`-px cut → picture coordinates (the inverse of from_frame)."""
        x0, y0, side = self._pixels()
        return (np.asarray(points, np.float32) * (side / size) + (x0, y0)).astype(np.float32)

    def contains(self, points: np.ndarray) -> bool:
        """Whether every (x, y) of `points` (picture pixels) lies in the box."""
        x0, y0, side = self._pixels()
        p = np.asarray(points)
        return bool(np.all((p >= (x0, y0)) & (p <= (x0 + side, y0 + side))))

    def paste(self, image: np.ndarray, crop: np.ndarray, feather: float = 0.08) -> np.ndarray:
        """`image` with `crop` (a cut of this box, any size) put back in place.

        Blended through a mask that fades over the outer `feather` of the side, so the
        crop's edge never shows; parts of the box outside the picture are dropped.
        """
        x0, y0, side = self._pixels()
        h, w = image.shape[:2]
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        if ix1 <= ix0 or iy1 <= iy0:
            return image
        interp = cv2.INTER_CUBIC if side > crop.shape[0] else cv2.INTER_AREA
        big = cv2.resize(crop, (side, side), interpolation=interp)
        mask = _feather_mask(side, feather)
        sub = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        out = image.copy()
        region = out[iy0:iy1, ix0:ix1].astype(np.float32)
        alpha = mask[sub][..., None]
        blended = region + (big[sub].astype(np.float32) - region) * alpha
        out[iy0:iy1, ix0:ix1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out


def _feather_mask(side: int, feather: float) -> np.ndarray:
    """1 inside, falling smoothly to 0 over the outer `feather` of each edge."""
    ramp = max(1.0, feather * side)
    d = np.arange(side, dtype=np.float32) + 0.5
    edge = np.minimum(d, side - d) / ramp
    one = np.clip(edge, 0.0, 1.0)
    one = one * one * (3 - 2 * one)  # smoothstep: no visible crease where the fade begins
    return np.minimum(one[:, None], one[None, :])


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in picture pixels


def _square(
    union: Box, face: float, width: int, height: int, others: Sequence[Box] = ()
) -> CropBox:
    """The square around a union of face regions (`face`: one face box's side), fitted to
    the picture as the module says, and kept off the faces of `others` (other people's
    unions): it shrinks, down to what the face needs, rather than take in a second face."""
    # Landmarks guessed past the picture's edge (a chin below the frame) need no room.
    x0, y0 = max(union[0], 0.0), max(union[1], 0.0)
    x1, y1 = min(union[2], float(width)), min(union[3], float(height))
    # The region the square may cover: the picture, less whatever lies past another face.
    lo_x, lo_y, hi_x, hi_y = 0.0, 0.0, float(width), float(height)
    for ox0, oy0, ox1, oy1 in others:
        if max(ox1 - ox0, oy1 - oy0) < OTHER_FACE * face:
            continue  # a face far smaller (in the background, or a false find) may show
        # Kept off along the side with the widest gap between the faces: it costs least room.
        gaps = {"right": ox0 - x1, "left": x0 - ox1, "below": oy0 - y1, "above": y0 - oy1}
        side_of, gap = max(gaps.items(), key=lambda kv: kv[1])
        if gap < 0:
            continue  # the faces overlap: no square holds one without the other
        if side_of == "right":
            hi_x = min(hi_x, ox0)
        elif side_of == "left":
            lo_x = max(lo_x, ox1)
        elif side_of == "below":
            hi_y = min(hi_y, oy0)
        else:
            lo_y = max(lo_y, oy1)
    extent = max(x1 - x0, y1 - y0)
    side = extent + (GROW - 1.0) * face
    side = max(min(side, hi_x - lo_x, hi_y - lo_y), MIN_GROW * extent)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - RAISE * face

    def place(centre: float, u0: float, u1: float, lo: float, hi: float) -> float:
        # Where the square may start: the face inside it, and (when it fits) the square
        # inside the room it has; the two always meet, as the face lies in that room.
        first, last = u1 - side, u0
        if side <= hi - lo:  # slide inside rather than pad
            first, last = max(first, lo), min(last, hi - side)
        return min(max(centre - side / 2, first), last)

    left, top = place(cx, x0, x1, lo_x, hi_x), place(cy, y0, y1, lo_y, hi_y)
    return CropBox(float(round(left)), float(round(top)), float(round(side)))


def _as_box(values: np.ndarray) -> Box:
    return float(values[0]), float(values[1]), float(values[2]), float(values[3])


def _face_box(face: FoundFace) -> tuple[np.ndarray, float]:
    """The region a face needs (its detector-style box and all its landmarks), and its size
    (that box's side), both from the landmarks: one measure for detected and followed faces."""
    box = box_from_landmarks(face.landmarks)
    lo, hi = face.landmarks.min(axis=0), face.landmarks.max(axis=0)
    region = np.concatenate([np.minimum(box[:2], lo), np.maximum(box[2:], hi)])
    return region.astype(np.float32), float(box[2] - box[0])


def portrait_face(image: np.ndarray, finder: FaceFinder) -> tuple[CropBox, np.ndarray]:
    """The square crop around the largest face of a still picture, and that face's
    landmarks (picture pixels)."""
    faces = finder.find(image, video=False)
    if not faces:
        raise NoFacesError(
            "no face found in the portrait", "use a photo showing one face, upright and unhidden"
        )
    face = max(faces, key=lambda f: f.size)
    region, size = _face_box(face)
    h, w = image.shape[:2]
    others = [_as_box(_face_box(f)[0]) for f in faces if f is not face]
    return _square(_as_box(region), size, w, h, others), face.landmarks


def portrait_box(image: np.ndarray, finder: FaceFinder) -> CropBox:
    """The square crop around the largest face of a still picture."""
    return portrait_face(image, finder)[0]


# ---- shots of a video ---------------------------------------------------------------------


@dataclass
class Shot:
    """Frames [start, end) of a video between two cuts, and the one box they are cut with.

    `box` is None when no face was found in the shot. `landmarks` holds the chosen
    person's 68 landmarks for the frames where faces were looked for, in the box's
    unit square (0..1 across the crop: multiply by S for an S-px cut).
    """

    start: int
    end: int
    box: CropBox | None
    landmarks: dict[int, np.ndarray] = field(default_factory=dict)
    people: int = 0  # people (tracks) seen in the shot

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass
class _Seen:
    """One track's faces within a shot (regions, sizes and landmarks by frame)."""

    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    sizes: dict[int, float] = field(default_factory=dict)
    landmarks: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, index: int, face: FoundFace) -> None:
        self.boxes[index], self.sizes[index] = _face_box(face)
        self.landmarks[index] = face.landmarks.astype(np.float32)

    def take(self, other: _Seen) -> None:
        self.boxes.update(other.boxes)
        self.sizes.update(other.sizes)
        self.landmarks.update(other.landmarks)

    @property
    def weight(self) -> float:
        # Largest x most present: the summed face size over the frames it is in.
        return float(sum(self.sizes.values()))

    @property
    def centre_x(self) -> float:
        return float(np.mean([(b[0] + b[2]) / 2 for b in self.boxes.values()]))

    def union(self) -> np.ndarray:
        boxes = np.stack(list(self.boxes.values()))
        return np.array([*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)])


def _choose(tracks: dict[int, _Seen], person: Person) -> tuple[_Seen, list[_Seen]]:
    """The person a shot is cropped around, with the pieces of their track a detector miss
    broke off (tracks never seen in the same frame as them, within their union box), and
    the other people."""
    if person == "main":
        chosen = max(tracks.values(), key=lambda t: t.weight)
    else:
        pick = min if person == "left" else max
        chosen = pick(tracks.values(), key=lambda t: t.centre_x)
    merged = _Seen()
    merged.take(chosen)
    union = chosen.union()
    others = []
    for seen in tracks.values():
        if seen is chosen:
            continue
        x0, y0, x1, y1 = seen.union()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        inside = union[0] <= cx <= union[2] and union[1] <= cy <= union[3]
        if inside and not set(seen.boxes) & set(chosen.boxes):
            merged.take(seen)
        else:
            others.append(seen)
    return merged, others


def _close_shot(
    start: int, end: int, tracks: dict[int, _Seen], width: int, height: int, person: Person
) -> Shot:
    if not tracks:
        return Shot(start, end, None)
    seen, others = _choose(tracks, person)
    face = float(np.median(list(seen.sizes.values())))
    box = _square(_as_box(seen.union()), face, width, height, [_as_box(o.union()) for o in others])
    landmarks = {i: box.from_frame(lm) for i, lm in sorted(seen.landmarks.items())}
    return Shot(start, end, box, landmarks, people=len(tracks))


def plan_shots(
    path: Path,
    finder: FaceFinder,
    *,
    every: int = EVERY,
    start: float | None = None,
    end: float | None = None,
    person: Person = "main",
    cancel: CancelToken | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Shot]:
    """The shots of a video (or of its [start, end) seconds), each with one steady box.

    One pass: cuts are judged on every frame, faces looked for on every `every`-th
    frame (and followed between), and each shot gets the box around the union of
    one person's faces over the shot: `person` "main" (the largest and most present
    face), or the leftmost or rightmost. Frame numbers count from the first frame of
    the range, as engine.convert.video_io.decode numbers them. No frames are kept.
    `progress(frames_done)` is called as frames go by. Raises CancelledError when
    `cancel` is set.
    """
    from engine.convert.video_io import decode, open_input

    video = open_input(path, start, end)
    cuts: list[int] = [0]
    total = 0
    cuts_judge = ShotCuts()

    def sampled() -> Iterator[tuple[int, np.ndarray, None]]:
        nonlocal total
        for frame in decode(video):
            if cancel is not None and cancel.cancelled:
                return
            if cuts_judge.step(frame.rgb):
                cuts.append(frame.index)
            total = frame.index + 1
            if progress is not None:
                progress(total)
            if frame.index % every == 0:
                yield frame.index, frame.rgb, None

    shots: list[Shot] = []
    tracks: dict[int, _Seen] = defaultdict(_Seen)
    shot_start = 0
    finder.reset()
    for found in finder.stream(sampled(), video=True, every=every, cancel=cancel):
        # Cuts are judged ahead of the faces (the finder detects ahead): every cut at or
        # before this frame is known by now.
        while len(cuts) > len(shots) + 1 and cuts[len(shots) + 1] <= found.index:
            shot_end = cuts[len(shots) + 1]
            shots.append(
                _close_shot(shot_start, shot_end, tracks, video.width, video.height, person)
            )
            tracks, shot_start = defaultdict(_Seen), shot_end
        for face in found.faces:
            key = face.track.id if face.track is not None else -1 - len(tracks)
            tracks[key].add(found.index, face)
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"cancelled while reading {path.name}", "run it again")
    # Cuts after the last sampled frame close the shots that remain.
    for cut in [*cuts[len(shots) + 1 :], total]:
        if cut > shot_start:
            shots.append(_close_shot(shot_start, cut, tracks, video.width, video.height, person))
            tracks, shot_start = defaultdict(_Seen), cut
    return shots


# ---- training data -------------------------------------------------------------------------


def training_clips(
    paths: list[Path],
    size: int,
    finder: FaceFinder,
    cancel: CancelToken | None = None,
    max_frames: int = MAX_CLIP_FRAMES,
) -> list[np.ndarray]:
    """One (T, size, size, 3) uint8 array per shot with a face, of all the videos.

    Each shot's frames are cut with its one box. A shot longer than `max_frames` is
    sampled evenly over its whole length (so memory is bounded by shots x max_frames,
    not by the videos' length); shots of fewer than two frames give no pairs and are
    left out. Raises CancelledError when `cancel` is set.
    """
    from engine.convert.video_io import decode, open_input

    clips: list[np.ndarray] = []
    for path in paths:
        shots = [s for s in plan_shots(path, finder, cancel=cancel) if s.box and s.frames >= 2]
        if not shots:
            continue
        # frame index -> (shot number, slot in its clip), only for the frames kept.
        wanted: dict[int, tuple[int, int]] = {}
        arrays = []
        for n, shot in enumerate(shots):
            keep = np.unique(
                np.linspace(shot.start, shot.end - 1, min(shot.frames, max_frames)).round()
            )
            for slot, index in enumerate(keep.astype(int)):
                wanted[int(index)] = (n, slot)
            arrays.append(np.zeros((len(keep), size, size, 3), np.uint8))
        last = max(wanted)
        for frame in decode(open_input(path, None, None)):
            if cancel is not None and cancel.cancelled:
                raise CancelledError(f"cancelled while reading {path.name}", "run it again")
            if frame.index in wanted:
                n, slot = wanted[frame.index]
                box = shots[n].box
                assert box is not None
                arrays[n][slot] = box.cut(frame.rgb, size)
            if frame.index >= last:
                break
        clips.extend(arrays)
    return clips
