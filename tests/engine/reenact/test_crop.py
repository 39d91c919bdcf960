"""FOMM's crops on real footage: one steady square per shot, around one person."""

from __future__ import annotations

from pathlib import Path

import av
import footage
import numpy as np
import pytest

from engine.errors import NoFacesError
from engine.faces.finder import FaceFinder
from engine.faces.types import box_from_landmarks
from engine.media.images import read_image
from engine.reenact.crop import GROW, CropBox, Shot, plan_shots, portrait_box, training_clips

SHOT = 12  # frames per shot of the clip with cuts


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder("mediapipe")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crop")
    return {
        "two": footage.two_people(root / "two.mp4", frames=24)[0],
        "cuts": footage.cuts(root / "cuts.mp4", frames_per_shot=SHOT)[0],
    }


@pytest.fixture(scope="module")
def planned(finder: FaceFinder, clips: dict[str, Path]) -> dict[str, list[Shot]]:
    return {name: plan_shots(path, finder) for name, path in clips.items()}


def _frames(path: Path, start: int = 0, count: int | None = None) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames[start : None if count is None else start + count]


def _faces_by_frame(finder: FaceFinder, path: Path) -> dict[int, list[np.ndarray]]:
    """The faces' landmarks of every third frame (most of them frames plan_shots looks at
    no faces in), found frame by frame on their own; those past the picture's edge (a chin
    below the frame) are moved onto it."""
    out = {}
    for i, frame in enumerate(_frames(path)):
        if i % 3 == 1:
            h, w = frame.shape[:2]
            faces = finder.find(frame, video=False)
            out[i] = [np.clip(f.landmarks, 0, (w, h)) for f in faces]
    return out


# ---- CropBox ---------------------------------------------------------------------------------


def test_cut_fills_what_lies_outside_the_picture_from_its_border():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :, 0] = np.arange(60, dtype=np.uint8)[None, :]  # red rises to the right
    image[:, :, 1] = np.arange(40, dtype=np.uint8)[:, None]  # green rises downwards
    cut = CropBox(-10, 30, 20).cut(image, 20)  # 10 px off the left, 10 px off the bottom
    assert cut.shape == (20, 20, 3) and cut.dtype == np.uint8
    assert (cut[:, :11, 0] == 0).all()  # the left edge repeated
    assert (cut[10:, :, 1] == 39).all()  # the bottom row repeated
    assert cut[0, 15, 0] == 5 and cut[0, 15, 1] == 30  # inside: the picture itself


def test_from_frame_and_to_frame_are_inverse_and_cut_agrees_with_them():
    box = CropBox(12, 7, 50)
    points = np.array([[12, 7], [37, 32], [62, 57]], np.float32)
    unit = box.from_frame(points)
    np.testing.assert_allclose(unit, [[0, 0], [0.5, 0.5], [1, 1]], atol=1e-6)
    np.testing.assert_allclose(box.to_frame(box.from_frame(points, 256), 256), points, atol=1e-4)
    # A bright dot lands where from_frame says it does in the cut.
    image = np.zeros((80, 80, 3), np.uint8)
    image[30:33, 40:43] = 255
    cut = box.cut(image, 100)
    y, x = np.unravel_index(cut[..., 0].argmax(), cut.shape[:2])
    np.testing.assert_allclose((x, y), box.from_frame(np.array([41.5, 31.5]), 100), atol=2.5)


def test_paste_puts_a_cut_back_and_fades_only_at_its_edge():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    box = CropBox(70, 20, 80)  # reaches 30 px past the right edge
    white = np.full((64, 64, 3), 255, np.uint8)
    out = box.paste(image, white)
    assert out.shape == image.shape
    assert (out[60, 110] == 255).all()  # the middle of the box: the crop
    assert (out[:20] == image[:20]).all() and (out[:, :70] == image[:, :70]).all()  # outside
    edge = out[60, 70].astype(int)  # the box's left edge: mostly the picture still
    assert (np.abs(edge - image[60, 70]) < 60).all()


# ---- portraits --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["portrait_s12.jpg", "portrait_s9.jpg"])
def test_a_portrait_gets_a_square_around_its_face_with_room_above(finder: FaceFinder, name: str):
    image = read_image(footage.footage(name))
    box = portrait_box(image, finder)
    lm = max(finder.find(image, video=False), key=lambda f: f.size).landmarks
    assert box.contains(lm)
    face = box_from_landmarks(lm)
    side = face[2] - face[0]
    # These portraits have the room: GROW face boxes (a little more for a long face).
    assert GROW * side <= box.side <= 1.1 * GROW * side
    # Centred across, the face a little below the middle (room for the top of the head).
    centre = box.from_frame((face[:2] + face[2:]) / 2)
    assert centre[0] == pytest.approx(0.5, abs=0.01)
    assert box.from_frame(face[:2])[1] > 0.25
    assert box.left >= 0 and box.left + box.side <= image.shape[1]


def test_a_picture_without_a_face_is_refused(finder: FaceFinder):
    with pytest.raises(NoFacesError, match="no face"):
        portrait_box(np.full((200, 200, 3), 128, np.uint8), finder)


# ---- shots of a video -------------------------------------------------------------------------


def _check_box_follows_one(shot: Shot, faces: dict[int, list[np.ndarray]], left: bool) -> None:
    """Over the shot: the chosen person's landmarks in the box, the other's not."""
    assert shot.box is not None
    for frame in range(shot.start, shot.end):
        if frame not in faces:
            continue
        found = sorted(faces[frame], key=lambda lm: lm[:, 0].mean())
        assert len(found) == 2
        mine, other = (found[0], found[1]) if left else (found[1], found[0])
        assert shot.box.contains(mine), frame
        unit = shot.box.from_frame(other)
        inside = ((unit >= 0) & (unit <= 1)).all(axis=1)
        assert not inside.any(), frame


def test_two_people_side_by_side_the_box_stays_on_one(finder: FaceFinder, clips, planned):
    faces = _faces_by_frame(finder, clips["two"])
    (shot,) = planned["two"]
    assert (shot.start, shot.end, shot.people) == (0, 24, 2)
    # The main person is the larger face (the woman, left); --person picks the other.
    _check_box_follows_one(shot, faces, left=True)
    (right,) = plan_shots(clips["two"], finder, person="right")
    _check_box_follows_one(right, faces, left=False)
    # Landmarks of the frames faces were looked for, in the box's unit square.
    assert sorted(shot.landmarks) == list(range(0, 24, 2))
    assert all(((lm >= 0) & (lm <= 1)).all() for lm in shot.landmarks.values())


def test_one_steady_box_per_shot_that_holds_the_face_throughout(finder: FaceFinder, clips, planned):
    faces = _faces_by_frame(finder, clips["cuts"])
    shots = planned["cuts"]
    assert [(s.start, s.end) for s in shots] == [(i * SHOT, (i + 1) * SHOT) for i in range(4)]
    boxes = [s.box for s in shots]
    assert all(b is not None for b in boxes)
    assert len(set(boxes)) == 4  # each shot its own box
    for shot in shots[:3]:  # one person each
        for frame in range(shot.start, shot.end):
            if frame not in faces:
                continue
            (lm,) = faces[frame]
            assert shot.box is not None and shot.box.contains(lm), frame
    _check_box_follows_one(shots[3], faces, left=True)  # the two-people shot


def test_training_clips_cut_every_shot_with_its_box(finder: FaceFinder, clips, planned):
    # Two videos; a shot longer than max_frames is sampled over its whole length.
    out = training_clips([clips["two"], clips["cuts"]], 48, finder, max_frames=SHOT - 1)
    assert [c.shape for c in out] == [(SHOT - 1, 48, 48, 3)] * 5
    assert all(c.dtype == np.uint8 for c in out)
    frames = _frames(clips["two"])
    box = planned["two"][0].box
    assert box is not None
    first, last = box.cut(frames[0], 48), box.cut(frames[-1], 48)
    assert np.abs(out[0][0].astype(int) - first).mean() < 1
    assert np.abs(out[0][-1].astype(int) - last).mean() < 1
    # Each shot's frames, cut with that shot's box.
    frames = _frames(clips["cuts"])
    for n, shot in enumerate(planned["cuts"]):
        assert shot.box is not None
        cut = shot.box.cut(frames[shot.start], 48)
        assert np.abs(out[1 + n][0].astype(int) - cut).mean() < 1
