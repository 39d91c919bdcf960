"""Convert's smoother: short gaps in a face's chain are filled, never across a cut."""

from __future__ import annotations

import numpy as np

from engine.convert.smooth import MAX_GAP, Face, Frame, Smoother
from engine.faces.mean_face import MEAN_FACE_68


def _face(x: float) -> Face:
    """A 100 px face whose left edge is at x."""
    return Face((MEAN_FACE_68 * 100 + np.array([x, 50.0])).astype(np.float32))


def _run(smoother: Smoother, frames: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for frame in frames:
        out += smoother.push(frame)
    return out + smoother.flush()


def _with_gap(gap: int, cut_at: int | None = None, before: int = 6, after: int = 6) -> list[Frame]:
    """A face moving right 2 px a frame, missing from `gap` frames in the middle."""
    frames = []
    for i in range(before + gap + after):
        missing = before <= i < before + gap
        frames.append(Frame(i, payload=i, faces=[] if missing else [_face(2.0 * i)]))
        frames[-1].cut = i == cut_at
    return frames


def test_a_short_gap_is_filled_with_the_same_chain():
    frames = _run(Smoother(sigma=1.0), _with_gap(5))
    assert [f.index for f in frames] == list(range(17))
    assert all(len(f.faces) == 1 for f in frames)
    chains = {f.faces[0].chain for f in frames}
    assert len(chains) == 1
    filled = [f for f in frames if f.faces[0].filled]
    assert [f.index for f in filled] == [6, 7, 8, 9, 10]
    for f in filled:  # interpolated where the face would have been
        expected = MEAN_FACE_68 * 100 + np.array([2.0 * f.index, 50.0])
        assert np.allclose(f.faces[0].smoothed, expected, atol=0.5)


def test_a_gap_longer_than_the_limit_is_not_filled():
    frames = _run(Smoother(sigma=1.0), _with_gap(MAX_GAP + 1))
    assert sum(len(f.faces) for f in frames) == 12
    assert len({face.chain for f in frames for face in f.faces}) == 2


def test_nothing_is_filled_or_smoothed_across_a_cut():
    frames = _run(Smoother(sigma=1.0), _with_gap(5, cut_at=8))
    assert sum(len(f.faces) for f in frames) == 12
    before = [f.faces[0] for f in frames[:6]]
    after = [f.faces[0] for f in frames[11:]]
    assert before[0].chain != after[0].chain
    # The first face after the cut is smoothed only with faces after it.
    assert after[0].smoothed[:, 0].min() > after[0].landmarks[:, 0].min() - 1e-3


def test_frames_are_held_back_only_while_a_face_is_missing():
    smoother = Smoother(sigma=1.0)
    out: list[int] = []
    frames = _with_gap(MAX_GAP + 3, before=4, after=4)
    held = 0
    for frame in frames:
        out += [f.index for f in smoother.push(frame)]
        held = max(held, len(smoother._frames))
    out += [f.index for f in smoother.flush()]
    assert out == list(range(len(frames)))
    # Bounded memory: radius frames each side plus the longest gap waited for.
    assert held <= 2 * smoother.radius + MAX_GAP + 2


def test_a_cut_without_a_gap_starts_a_new_chain():
    # Someone else at the same place right after a cut: not linked, not averaged with.
    frames = _with_gap(0, cut_at=6)
    for f in frames[6:]:
        f.faces[0].landmarks = f.faces[0].landmarks + np.float32(30.0)
    out = _run(Smoother(sigma=1.0), frames)
    assert out[5].faces[0].chain != out[6].faces[0].chain
    assert np.allclose(out[6].faces[0].smoothed[0], out[6].faces[0].landmarks[0], atol=2.5)
