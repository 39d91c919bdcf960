"""Convert on real footage: faces from the model's own faceset, audio kept whole.

The clips are built from ../shared/footage by tests/footage.py (MIT, LivePortrait's
example assets): two people side by side, and a talk whose audio starts 0.85 s
before its first video frame.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import av
import footage
import numpy as np
import pytest
from clips import marked_copy, read_frames

from engine.config import ConvertConfig, ExtractConfig, build
from engine.convert import convert
from engine.errors import BadInputError, NoFacesError
from engine.extract import extract
from engine.workspace import Workspace

pytestmark = pytest.mark.slow


def train_briefly(ws: Workspace, name: str, faceset_a: str, faceset_b: str) -> str:
    """A tiny model after two steps: it changes faces, and costs seconds, not minutes."""
    from engine.config import RunSettings
    from engine.train.loop import train

    requested = {"preset": "tiny", "faceset_a": faceset_a, "faceset_b": faceset_b, "seed": 0}
    settings = build(RunSettings, steps=2, save_every=2, preview_every=1000, snapshot_every=0)
    train(ws, name, requested, settings)
    return name


def run(ws: Workspace, model: str, src: Path, out: Path, **options: Any) -> list[Any]:
    events: list[Any] = []
    config = build(ConvertConfig, input=src, output=out, model=model, backend="dlib", **options)
    convert(config, ws, events.append)
    return events


def extract_into(ws: Workspace, src: Path, faceset: str, *references: Path) -> None:
    config = build(
        ExtractConfig, sources=[src], faceset=faceset, backend="dlib", references=list(references)
    )
    extract(config, ws)


def audio_packets(path: Path) -> list[tuple[int, str]]:
    """(pts, digest) of every audio packet of the first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [
            (int(p.pts), hashlib.sha256(bytes(p)).hexdigest())
            for p in container.demux(stream)
            if p.pts is not None and p.size
        ]


def languages(path: Path) -> list[str | None]:
    with av.open(str(path)) as container:
        return [s.metadata.get("language") for s in container.streams.audio]


def video_after_audio(path: Path) -> float:
    """Seconds from the audio's start to the first video frame's."""
    starts = footage.stream_starts(path)
    return starts["video"] - starts["audio"]


# ---- which faceset ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lead_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return footage.audio_lead(tmp_path_factory.mktemp("lead") / "lead.mp4")[0]


@pytest.fixture(scope="module")
def lead_ws(sample_workspace: Workspace, lead_clip: Path, tmp_path_factory) -> Workspace:
    """The sample facesets, model `tiny` trained on them, and then an `extract --reference`
    of the clip into faceset `a` (the model's A side) that matched no one: every frame
    done, no face."""
    ws = Workspace(tmp_path_factory.mktemp("lead_ws") / "ws")
    shutil.copytree(sample_workspace.facesets_dir, ws.facesets_dir)
    train_briefly(ws, "tiny", "a", "b")
    with pytest.raises(NoFacesError):
        extract_into(ws, lead_clip, "a", footage.footage("portrait_s12.jpg"))
    return ws


@pytest.fixture(scope="module")
def lead_converted(lead_ws: Workspace, lead_clip: Path) -> tuple[Path, list[Any]]:
    out = lead_clip.parent / "swapped.mp4"
    return out, run(lead_ws, "tiny", lead_clip, out)


def test_a_faceset_with_no_face_of_the_video_is_not_used(
    lead_converted: tuple[Path, list[Any]],
) -> None:
    _, events = lead_converted
    assert events[0].type == "started"
    assert events[0].detail["faces_from"] == "found on the fly"
    assert events[-1].type == "finished"
    assert events[-1].result["faces_swapped"] >= 40


def test_naming_a_faceset_that_does_not_cover_the_video_is_one_error(
    lead_ws: Workspace, lead_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.mp4"
    with pytest.raises(BadInputError, match=r"faceset a does not cover .*holds no face"):
        run(lead_ws, "tiny", lead_clip, out, faceset="a")
    with pytest.raises(BadInputError, match=r"faceset b does not cover .*not extracted from"):
        run(lead_ws, "tiny", lead_clip, out, faceset="b")
    assert not out.exists()


@pytest.fixture(scope="module")
def two_people_ws(
    sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, Path]:
    """Two facesets of one two-person clip: `all` (both people) and `woman` (extracted with
    a reference photo of the woman on the left); model `w` trained briefly on `woman`."""
    from PIL import Image

    root = tmp_path_factory.mktemp("two_people")
    clip, _ = footage.two_people(root / "two.mp4")
    reference = root / "woman.png"
    Image.fromarray(footage.read_frames("talk_d3.mp4", 300, 1)[0]).save(reference)
    ws = Workspace(root / "ws")
    shutil.copytree(sample_workspace.facesets_dir / "b", ws.faceset_dir("b"))
    extract_into(ws, clip, "all")  # sorts before `woman`: the faceset convert used to take
    extract_into(ws, clip, "woman", reference)
    train_briefly(ws, "w", "woman", "b")
    return ws, clip


def test_faces_come_from_the_faceset_the_model_was_trained_on(
    two_people_ws: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, clip = two_people_ws
    out = tmp_path / "out.mp4"
    events = run(ws, "w", clip, out)
    assert events[0].detail["faces_from"] == "faceset woman"
    frames = len(read_frames(clip))
    assert events[-1].result["faces_swapped"] == frames  # the woman, once a frame
    before = np.stack(read_frames(marked_copy(clip, tmp_path / "b.mp4"))).astype(np.int16)
    after = np.stack(read_frames(out)).astype(np.int16)
    half = before.shape[2] // 2
    changed = np.abs(before - after).max(axis=-1) > 24  # well beyond codec noise
    # Her face reaches the seam: its feathered edge and the codec's blocks may cross it.
    left, right = changed[:, :, :half].mean(), changed[:, :, half + 32 :].mean()
    assert left > 0.02, left  # the woman is swapped
    assert right < 0.001, right  # the man beside her is not


def test_a_named_faceset_is_used(two_people_ws: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, clip = two_people_ws
    events = run(ws, "w", clip, tmp_path / "out.mp4", faceset="all")
    assert events[0].detail["faces_from"] == "faceset all"
    assert events[-1].result["faces_swapped"] == 2 * len(read_frames(clip))


# ---- audio -----------------------------------------------------------------------------------


def test_audio_before_the_first_frame_is_kept_with_its_offset_and_language(
    lead_clip: Path, lead_converted: tuple[Path, list[Any]]
) -> None:
    out, _ = lead_converted
    assert video_after_audio(lead_clip) > 0.8  # the clip is what the test is about
    assert audio_packets(out) == audio_packets(lead_clip)  # every packet, same bytes and time
    assert footage.audio_seconds(out) == pytest.approx(footage.audio_seconds(lead_clip))
    assert video_after_audio(out) == pytest.approx(video_after_audio(lead_clip), abs=1 / 30)
    assert languages(out) == languages(lead_clip) == ["eng"]


def test_trimmed_audio_starts_with_the_video(
    lead_ws: Workspace, lead_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trim.mp4"
    run(lead_ws, "tiny", lead_clip, out, start=0.5, end=1.0)
    assert len(read_frames(out)) == 15
    assert video_after_audio(out) == pytest.approx(0.0, abs=1 / 30)
    assert footage.audio_seconds(out) == pytest.approx(0.5, abs=0.05)
    assert languages(out) == ["eng"]


def test_talk_audio_is_copied_packet_for_packet(tmp_path: Path) -> None:
    from engine.convert.video_io import VideoOutput, decode, open_input

    src = footage.footage("talk_d3.mp4")
    out = tmp_path / "copy.mp4"
    video = open_input(src, None, None)
    output = VideoOutput(out, "mp4", video)
    for frame in decode(video):
        output.write(frame.rgb, frame.pts)
    output.close()
    assert audio_packets(out) == audio_packets(src)
    assert footage.audio_seconds(out) == pytest.approx(footage.audio_seconds(src))
    assert video_after_audio(out) == pytest.approx(video_after_audio(src), abs=1 / 30)
    assert languages(out) == languages(src)
