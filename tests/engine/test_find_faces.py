"""One face finder for extract, convert and score; convert chains faces by extract's tracks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import footage
import numpy as np
import pytest

from engine.config import ExtractConfig, build
from engine.convert.faces import ManifestFaces
from engine.convert.run import _found_faces
from engine.convert.smooth import Face, Frame, Smoother
from engine.convert.video_io import decode, open_input
from engine.extract import extract
from engine.faces.finder import FaceFinder
from engine.faces.mean_face import MEAN_FACE_68
from engine.faceset import Faceset
from engine.media.video import VideoReader
from engine.workspace import Workspace

# ---- the smoother: tracks decide, overlap only where there is no track -----------------------


def _face(x: float, track: int | None = None) -> Face:
    """A 100 px face whose left edge is at x."""
    return Face((MEAN_FACE_68 * 100 + np.array([x, 50.0])).astype(np.float32), track=track)


def _run(frames: list[Frame], sigma: float = 1.0) -> list[Frame]:
    smoother = Smoother(sigma)
    out: list[Frame] = []
    for frame in frames:
        out += smoother.push(frame)
    return out + smoother.flush()


def _chain_at(frame: Frame, x: float) -> int:
    """The chain of the face whose left edge is nearest x."""
    return min(frame.faces, key=lambda f: abs(f.landmarks[:, 0].min() - x)).chain


def test_faces_with_tracks_are_chained_by_track_where_overlap_would_cross_them():
    # Two overlapping faces trade places in one frame: overlap links each to the
    # face that stood where it now stands; the tracks say who is who.
    def frames(tracks: bool) -> list[Frame]:
        one, two = (1, 2) if tracks else (None, None)
        return [
            Frame(0, 0, [_face(0, one), _face(40, two)]),
            Frame(1, 1, [_face(40, one), _face(0, two)]),
        ]

    by_overlap = _run(frames(tracks=False))
    assert _chain_at(by_overlap[0], 0) == _chain_at(by_overlap[1], 0)
    by_track = _run(frames(tracks=True))
    assert _chain_at(by_track[0], 0) == _chain_at(by_track[1], 40)
    assert _chain_at(by_track[0], 40) == _chain_at(by_track[1], 0)


def test_a_track_missing_for_a_few_frames_keeps_its_chain_wherever_it_comes_back():
    # Gone for 3 frames, back 90 px further right: too far for overlap, the same track.
    def frames(track: int | None) -> list[Frame]:
        out = [Frame(i, i, [_face(2.0 * i, track)]) for i in range(4)]
        out += [Frame(i, i, []) for i in range(4, 7)]
        return out + [Frame(i, i, [_face(90.0 + 2.0 * i, track)]) for i in range(7, 11)]

    out = _run(frames(track=7))
    assert all(len(f.faces) == 1 for f in out)
    assert len({f.faces[0].chain for f in out}) == 1
    assert [f.index for f in out if f.faces[0].filled] == [4, 5, 6]
    # Without a track it is someone else, and the gap stays empty.
    out = _run(frames(track=None))
    assert sum(len(f.faces) for f in out) == 8
    assert len({face.chain for f in out for face in f.faces}) == 2


def test_a_new_track_takes_over_a_face_lost_earlier_but_not_one_lost_this_frame():
    # The tracker gives a face it lost and found again a new id: after a gap, a new
    # track at about the same place fills it and continues the chain...
    frames = [Frame(i, i, [_face(2.0 * i, track=1)]) for i in range(4)]
    frames += [Frame(4, 4, []), Frame(5, 5, [])]
    frames += [Frame(i, i, [_face(2.0 * i, track=2)]) for i in range(6, 10)]
    out = _run(frames)
    assert len({f.faces[0].chain for f in out}) == 1
    assert [f.index for f in out if f.faces[0].filled] == [4, 5]
    # ...but a new track in the very next frame is who the tracker said: someone else.
    frames = [Frame(i, i, [_face(2.0 * i, track=1 if i < 4 else 2)]) for i in range(8)]
    out = _run(frames)
    assert out[3].faces[0].chain != out[4].faces[0].chain
    # And the old track, back later, does not share the chain the new one took over.
    frames = [Frame(0, 0, [_face(0, track=1)]), Frame(1, 1, [])]
    frames += [Frame(2, 2, [_face(0, track=2)]), Frame(3, 3, [_face(0, 2), _face(300, 1)])]
    out = _run(frames)
    assert _chain_at(out[3], 0) == out[0].faces[0].chain
    assert _chain_at(out[3], 300) != _chain_at(out[3], 0)


# ---- real footage: extract stores the finder's tracks, convert follows them -------------------


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    """Two people side by side (30 frames), extracted into faceset `x`."""
    root = tmp_path_factory.mktemp("find")
    clip, _ = footage.two_people(root / "two.mp4", frames=30)
    ws = Workspace(root / "ws")
    config = build(ExtractConfig, sources=[clip], faceset="x", backend="dlib", size=64)
    extract(config, ws, workers=0)
    return ws, clip


def test_extract_stores_the_faces_and_tracks_the_finder_finds(two):
    ws, clip = two
    with Faceset.open(ws.faceset_dir("x")) as faceset:
        records = list(faceset.faces())
    stored = {(r.frame, r.idx): r for r in records}
    finder = FaceFinder("dlib", min_face=80)
    frames = ((index, image, None) for index, image in VideoReader(clip))
    found = list(finder.stream(frames, video=True))
    assert len(found) == 30
    for frame in found:
        assert [stored[frame.index, i].track for i in range(len(frame.faces))] == [
            f.track.id for f in frame.faces
        ]
        for i, face in enumerate(frame.faces):
            assert np.array_equal(stored[frame.index, i].landmarks, face.landmarks)
    assert len(stored) == sum(len(f.faces) for f in found) == 60
    # One track a person, each on its own side of the frame throughout.
    sides = {r.track: set() for r in records}
    for r in records:
        sides[r.track].add(r.landmarks[:, 0].mean() < 320)
    assert len(sides) == 2 and sorted(len(s) for s in sides.values()) == [1, 1]


def _convert_chains(ws: Workspace, clip: Path) -> list[list[tuple[float, int, np.ndarray]]]:
    """Per frame, (x, chain, smoothed landmarks) of each face, left to right, as convert's
    video path gets them from faceset `x` and steadies them."""
    manifest = ManifestFaces.find(ws, clip, "x", required=True)
    assert manifest is not None
    try:
        frames = _found_faces(decode(open_input(clip, None, None)), None, manifest)  # type: ignore[arg-type]
        out = _run(list(frames))
    finally:
        manifest.close()
    return [
        sorted((float(f.landmarks[:, 0].mean()), f.chain, f.smoothed) for f in frame.faces)
        for frame in out
    ]


def test_convert_chains_faceset_faces_by_their_stored_tracks(two, tmp_path):
    ws, clip = two
    chains = _convert_chains(ws, clip)
    assert len(chains) == 30 and all(len(faces) == 2 for faces in chains)
    left, right = {f[0][1] for f in chains}, {f[1][1] for f in chains}
    assert len(left) == len(right) == 1 and left != right

    # The same faces, but the stored tracks say the two people trade places halfway
    # (overlap would still link each face to the one beside it in the frame before).
    import shutil

    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root)
    db = sqlite3.connect(copy.faceset_dir("x") / "faceset.sqlite")
    a, b = sorted(r[0] for r in db.execute("SELECT DISTINCT track FROM faces"))
    db.execute(
        "UPDATE faces SET track = CASE track WHEN ? THEN ? ELSE ? END WHERE frame >= 15", (a, b, a)
    )
    db.commit()
    db.close()
    traded = _convert_chains(copy, clip)
    assert {f[0][1] for f in traded[:15]} == {f[1][1] for f in traded[15:]}
    assert {f[1][1] for f in traded[:15]} == {f[0][1] for f in traded[15:]}
    # Smoothing follows the tracks: the left face just after the trade is averaged
    # with the right face of the frames before it, and pulled towards it.
    x, _, smoothed = traded[15][0]
    assert smoothed[:, 0].mean() > x + 50
    assert abs(chains[15][0][2][:, 0].mean() - x) < 5


def test_a_resumed_tracker_never_reuses_a_stored_id():
    from skimage import data

    finder = FaceFinder("dlib")
    image = data.astronaut()
    frames = [(5, image, None), (6, image, None)]
    found = list(finder.stream(iter(frames), video=True, resume=lambda index: ([], 41)))
    first = sorted(f.track.id for f in found[0].faces)
    assert first and first[0] == 42  # above the highest id the faceset holds
    assert sorted(f.track.id for f in found[1].faces) == first  # followed, not renumbered


# ---- --preview-frames takes faces where the conversion would ----------------------------------


def test_preview_takes_the_faces_of_the_faceset_convert_would_use(two, sample_workspace, tmp_path):
    import shutil

    from engine.config import ConvertConfig, RunSettings
    from engine.convert import convert
    from engine.errors import BadInputError
    from engine.train.loop import train

    source, clip = two
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(source.root, ws.root)
    shutil.copytree(sample_workspace.faceset_dir("b"), ws.faceset_dir("b"))
    requested = {"preset": "tiny", "faceset_a": "x", "faceset_b": "b", "seed": 0}
    settings = build(RunSettings, steps=2, save_every=2, preview_every=1000, snapshot_every=0)
    train(ws, "m", requested, settings)
    # Pruned to the woman on the left: the man is found on the fly, never in the faceset.
    with Faceset.open(ws.faceset_dir("x")) as faceset:
        faceset.delete_faces([r.id for r in faceset.faces() if r.landmarks[:, 0].mean() > 320])

    def preview(src: Path, **options: object) -> list:
        events: list = []
        out = tmp_path / "preview.png"
        config = build(
            ConvertConfig,
            input=src,
            output=out,
            model="m",
            backend="dlib",
            preview_frames=3,
            overwrite=True,
            **options,
        )
        convert(config, ws, events.append)
        return events

    for options in ({}, {"faceset": "x"}):  # the model's own faceset, or named
        events = preview(clip, **options)
        assert events[0].detail["faces_from"] == "faceset x"
        assert events[-1].result["faces_swapped"] == 3
    elsewhere = tmp_path / "elsewhere.mp4"  # the same video, but no faceset covers it
    shutil.copy(clip, elsewhere)
    events = preview(elsewhere)
    assert events[0].detail["faces_from"] == "found on the fly"
    assert events[-1].result["faces_swapped"] == 6
    with pytest.raises(BadInputError, match="does not cover"):
        preview(elsewhere, faceset="x")
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(footage.read_frames("talk_d3.mp4", 30, 1)[0]).save(photo)
    with pytest.raises(BadInputError, match="INPUT is images"):
        preview(photo, faceset="x")
