"""Convert on real video: timing and audio kept, only the face changed, marked, steerable."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clips import SAMPLE_CLIP, info, marked_copy, read_frames, reencode, short_clip, write_clip

from engine.config import ConvertConfig, build
from engine.convert import convert
from engine.errors import CancelledError
from engine.events import CancelToken
from engine.faces.finder import FaceFinder
from engine.workspace import Workspace

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
SHORT_FRAMES = 60  # short_input: the sample clip's first 2 s at its 30 fps


def run(ws: Workspace, model: str, src: Path, out: Path, **options: Any) -> list[Any]:
    events: list[Any] = []
    config = build(ConvertConfig, input=src, output=out, model=model, backend="dlib", **options)
    convert(config, ws, events.append)
    return events


@pytest.fixture(scope="module")
def short_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(tmp_path_factory.mktemp("clip") / "short.mp4", 2.0)


@pytest.fixture(scope="module")
def converted(
    sample_workspace: Workspace, tiny_model: str, short_input: Path
) -> tuple[Path, list[Any]]:
    out = short_input.parent / "swapped.mp4"
    return out, run(sample_workspace, tiny_model, short_input, out)


def face_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    face = FaceFinder("dlib").find(frame, video=False)[0]
    x0, y0 = face.landmarks.min(axis=0).astype(int)
    x1, y1 = face.landmarks.max(axis=0).astype(int)
    return x0, y0, x1, y1


def test_output_keeps_frames_timing_and_audio(
    short_input: Path, converted: tuple[Path, list[Any]]
) -> None:
    out, events = converted
    before, after = info(short_input), info(out)
    assert after["frames"] == before["frames"] == SHORT_FRAMES
    assert after["fps"] == pytest.approx(before["fps"])
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05)
    assert after["pts"] == before["pts"]
    assert after["audio"] == ["aac"]
    assert "swapdeck" in " ".join(after["metadata"].values())
    result = events[-1].result
    assert events[-1].type == "finished"
    assert result["frames"] == SHORT_FRAMES
    assert result["faces_swapped"] >= 0.9 * SHORT_FRAMES
    assert result["frames_without_face"] == 0
    assert result["output"] == str(out)


def test_only_the_face_changes(
    short_input: Path, converted: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    baseline = np.stack(read_frames(marked_copy(short_input, tmp_path / "b.mp4")))
    before = np.stack(read_frames(short_input)).astype(np.int16)
    after = np.stack(read_frames(converted[0])).astype(np.int16)
    x0, y0, x1, y1 = face_box(read_frames(short_input, 1)[0])

    def outside(diff: np.ndarray) -> np.ndarray:
        # Well outside the face: left and right of it, a margin away.
        return np.concatenate([diff[:, :, : x0 - 60], diff[:, :, x1 + 60 :]], axis=2)

    changed = np.abs(before - after).mean(axis=-1)
    assert changed[:, y0:y1, x0:x1].mean() > 8
    # Against the input: no more than the watermark's noise (PSNR about 36 dB).
    assert outside(changed).mean() < 4.0
    # Against the input only marked and encoded: equal up to codec noise.
    codec = outside(np.abs(baseline.astype(np.int16) - after).mean(axis=-1))
    assert codec.mean() < 1.5, codec.mean()
    assert np.percentile(codec, 99) < 8  # x264 decides differently once the face differs


def test_output_is_marked_and_survives_reencode(
    short_input: Path, converted: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    from engine.provenance import verify

    assert verify(converted[0]).marked
    assert verify(reencode(converted[0], tmp_path / "crf23.mp4", crf=23)).marked
    assert not verify(short_input).marked


@pytest.mark.slow
def test_reference_swaps_only_that_person(
    sample_workspace: Workspace, tiny_model: str, tmp_path: Path
) -> None:
    from engine.media.images import read_image

    # Two people side by side: the clip of a and a still of b.
    hopper = read_image(sorted((SAMPLE / "b").glob("*.jpg"))[0])
    frames = []
    for frame in read_frames(SAMPLE_CLIP, 12):
        right = np.zeros_like(frame)
        h = min(frame.shape[0], hopper.shape[0])
        w = min(frame.shape[1], hopper.shape[1])
        right[:h, :w] = hopper[:h, :w]
        frames.append(np.concatenate([frame, right], axis=1))
    src = write_clip(tmp_path / "two.mp4", frames)
    out = tmp_path / "one_swapped.mp4"
    ref = sorted((SAMPLE / "b").glob("*.jpg"))[5]
    events = run(sample_workspace, tiny_model, src, out, references=[ref])
    result = events[-1].result
    assert result["faces_swapped"] == 12
    assert result["faces_not_chosen"] == 12
    before = np.stack(read_frames(marked_copy(src, tmp_path / "b.mp4"))).astype(np.int16)
    after = np.stack(read_frames(out)).astype(np.int16)
    half = before.shape[2] // 2
    changed = np.abs(before - after).max(axis=-1) > 24  # well beyond codec noise
    left, right = changed[:, :, :half].mean(), changed[:, :, half:].mean()
    assert left < 0.001, left  # a stays
    assert right > 0.02, right  # b's face is swapped


def test_cancel_leaves_nothing(
    sample_workspace: Workspace, tiny_model: str, short_input: Path, tmp_path: Path
) -> None:
    cancel = CancelToken()
    seen = []

    def sink(event: Any) -> None:
        seen.append(event)
        if event.type == "progress":
            cancel.cancel()

    out = tmp_path / "never.mp4"
    config = build(ConvertConfig, input=short_input, output=out, model=tiny_model, backend="dlib")
    with pytest.raises(CancelledError):
        convert(config, sample_workspace, sink, cancel)
    assert list(tmp_path.iterdir()) == []


def test_odd_size_and_irregular_timing_are_kept(
    sample_workspace: Workspace, tiny_model: str, tmp_path: Path
) -> None:
    from fractions import Fraction

    # 321 x 321 from the middle of the 384 x 384 sample clip, face inside.
    frames = [f[20:341, 31:352] for f in read_frames(SAMPLE_CLIP, 20)]
    # Variable frame rate: gaps of 1, 2 and 3 ticks of 1/25 s.
    steps = [1, 2, 3, 1, 1, 2] * 4
    pts = list(np.cumsum([0, *steps[:19]]) * 512)
    src = write_clip(
        tmp_path / "vfr.mp4", frames, pts=pts, time_base=Fraction(1, 12800), pix_fmt="yuv444p"
    )
    out = tmp_path / "out.mp4"
    events = run(sample_workspace, tiny_model, src, out)
    before, after = info(src), info(out)
    assert after["size"] == (321, 321)
    assert after["frames"] == before["frames"] == 20
    seconds = [p * before["time_base"] for p in before["pts"]]
    assert [p * after["time_base"] for p in after["pts"]] == seconds
    assert events[-1].result["faces_swapped"] >= 15


@pytest.mark.slow
def test_faces_come_from_a_faceset_of_the_same_video(
    sample_workspace: Workspace, tiny_model: str, short_input: Path, tmp_path: Path
) -> None:
    from engine.config import ExtractConfig
    from engine.extract import extract

    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    extract(build(ExtractConfig, sources=[short_input], faceset="clip", backend="dlib"), ws)
    # Named: only the model's own faceset (`a` here) is taken unasked.
    events = run(ws, tiny_model, short_input, tmp_path / "out.mp4", faceset="clip")
    assert events[0].detail["faces_from"] == "faceset clip"
    assert events[-1].result["faces_swapped"] == SHORT_FRAMES


@pytest.mark.slow
def test_image_folder_and_preview(
    sample_workspace: Workspace, tiny_model: str, tmp_path: Path
) -> None:
    from engine.media.images import read_image
    from engine.provenance import verify

    src = tmp_path / "photos"
    src.mkdir()
    for photo in sorted((SAMPLE / "a").glob("*.jpg"))[:3]:
        shutil.copy(photo, src / photo.name)
    out = tmp_path / "swapped"
    events = run(sample_workspace, tiny_model, src, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())
    assert events[-1].result["faces_swapped"] == 3
    for photo in out.iterdir():
        assert read_image(photo).shape == read_image(src / photo.name).shape
        assert verify(photo).marked
    sheet = tmp_path / "tune.png"
    events = run(sample_workspace, tiny_model, SAMPLE_CLIP, sheet, preview_frames=3)
    assert events[-1].result["frames"] == 3
    assert read_image(sheet).shape[1] == 960
