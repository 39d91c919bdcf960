"""reenact end to end on real footage with a random-weight fomm-small model (64 px)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from footage import audio_seconds, footage
from PIL import Image

from engine.config import ReenactConfig, build
from engine.errors import BadInputError, CancelledError, NoFacesError, NotFoundError
from engine.events import CancelToken, Finished, Progress, Started
from engine.faces.finder import FaceFinder
from engine.media.images import read_image
from engine.provenance import verify
from engine.reenact.crop import plan_shots, portrait_box, portrait_face
from engine.reenact.run import reenact
from engine.train.families.fomm.motion import best_frame
from engine.workspace import Workspace

SIZE = 64
FRAMES = 9  # of the 0.3 s driving clip


def _config(ws_model, source: Path, driving: Path, output: Path, **options) -> ReenactConfig:
    _, model = ws_model
    options.setdefault("backend", "mediapipe")
    return build(
        ReenactConfig,
        source=source,
        driving=driving,
        output=output,
        model=model,
        device="cpu",
        **options,
    )


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _audio_streams(path: Path) -> int:
    with av.open(str(path)) as container:
        return len(container.streams.audio)


def test_a_portrait_moved_by_a_talking_clip(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    out = tmp_path / "moved.mp4"
    events: list = []
    result = reenact(_config(fomm_ws, footage("portrait_s12.jpg"), driving, out), ws, events.append)
    frames = _frames(out)
    assert len(frames) == FRAMES == result.frames
    assert frames[0].shape == (SIZE, SIZE, 3)
    assert result.outputs == [str(out)] and result.shots == 1 and result.frames_without_face == 0
    assert result.start_frame == 0  # relative to the first frame with a face
    assert _audio_streams(out) == 1 == result.audio_streams
    assert audio_seconds(out) == pytest.approx(audio_seconds(driving), abs=0.03)
    checked = verify(out)
    assert checked.marked and checked.metadata
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    stages = {e.stage for e in events if isinstance(e, Progress)}
    assert stages == {"plan", "reenact"}
    assert [p.name for p in tmp_path.iterdir()] == ["moved.mp4"]  # no temporary file left


def test_paste_back_with_best_frame_and_adapt_scale(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    portrait = footage("portrait_s12.jpg")
    out = tmp_path / "pasted.mp4"
    config = _config(
        fomm_ws, portrait, driving, out, paste_back=True, best_frame=True, adapt_scale=True
    )
    result = reenact(config, ws)
    frames = _frames(out)
    width, height = Image.open(portrait).size
    assert len(frames) == FRAMES and frames[0].shape == (height, width, 3)
    # Outside the face's square the portrait is itself (give or take H.264).
    still = np.asarray(Image.open(portrait).convert("RGB")).astype(int)
    corner = np.abs(frames[FRAMES // 2][-40:, -40:].astype(int) - still[-40:, -40:]).mean()
    assert corner < 6
    # Motion is measured from the driving frame posed most like the portrait.
    finder = FaceFinder("mediapipe")
    (shot,) = plan_shots(driving, finder)
    image = read_image(portrait)
    box, landmarks = portrait_face(image, finder)
    sampled = sorted(shot.landmarks)
    nearest = best_frame(box.from_frame(landmarks), [shot.landmarks[i] for i in sampled])
    assert result.start_frame == sampled[nearest]
    assert verify(out).marked


def test_a_folder_of_portraits_gives_one_video_each(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(footage("portrait_s12.jpg"), folder / "einstein.jpg")
    shutil.copy(footage("portrait_s3.jpg"), folder / "woman.jpg")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(folder / "wall.png")  # no face: skipped
    out = tmp_path / "moved"
    events: list = []
    config = _config(fomm_ws, folder, driving, out, relative=False, start=0.1)
    result = reenact(config, ws, events.append)
    assert sorted(p.name for p in out.iterdir()) == ["einstein.mp4", "woman.mp4"]
    assert result.outputs == [str(out / "einstein.mp4"), str(out / "woman.mp4")]
    for name in ("einstein.mp4", "woman.mp4"):  # from 0.1 s: 6 frames, and the sound with them
        assert len(_frames(out / name)) == FRAMES - 3 and verify(out / name).marked
        assert audio_seconds(out / name) == pytest.approx(0.2, abs=0.03)
    assert any("wall.png" in getattr(e, "message", "") for e in events)


def test_cuts_a_faceless_shot_and_two_people(fomm_ws, driving_cuts: Path, tmp_path: Path):
    ws, _ = fomm_ws
    out = tmp_path / "cuts.mp4"
    result = reenact(_config(fomm_ws, footage("portrait_s12.jpg"), driving_cuts, out), ws)
    assert (result.frames, result.shots, result.frames_without_face) == (15, 3, 5)
    frames = _frames(out)
    assert len(frames) == 15
    # The faceless shot holds the last frame animated before it (not the still portrait).
    image = read_image(footage("portrait_s12.jpg"))
    still = portrait_box(image, FaceFinder("mediapipe")).cut(image, SIZE).astype(int)
    assert np.abs(frames[4].astype(int) - still).mean() > 10
    for held in frames[5:10]:
        assert np.abs(held.astype(int) - frames[4]).mean() < 3


def test_preview_frames_render_one_sheet(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    out = tmp_path / "try.png"
    result = reenact(
        _config(fomm_ws, footage("portrait_s12.jpg"), driving, out, preview_frames=2), ws
    )
    assert result.preview == str(out) and result.frames == 2
    sheet = Image.open(out)
    assert sheet.size == (2 * 192, 3 * 192)  # the portrait on top, then a row per frame
    assert verify(out).marked


def test_a_portrait_without_a_face_is_refused_and_nothing_written(
    fomm_ws, driving: Path, tmp_path: Path
):
    ws, _ = fomm_ws
    plain = tmp_path / "wall.png"
    Image.new("RGB", (300, 300), (128, 128, 128)).save(plain)
    out = tmp_path / "out.mp4"
    with pytest.raises(NoFacesError, match=r"no face found in .*wall\.png"):
        reenact(_config(fomm_ws, plain, driving, out), ws)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(BadInputError, match=r"broken\.jpg"):
        reenact(_config(fomm_ws, broken, driving, out), ws)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jpg", "wall.png"]


def test_refusals_before_any_work(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    portrait = footage("portrait_s12.jpg")
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    with pytest.raises(BadInputError, match="already exists"):
        reenact(_config(fomm_ws, portrait, driving, taken), ws)
    with pytest.raises(BadInputError, match="video format"):
        reenact(_config(fomm_ws, portrait, driving, tmp_path / "out.txt"), ws)
    with pytest.raises(NotFoundError, match="does not exist"):
        reenact(_config(fomm_ws, portrait, tmp_path / "none.mp4", tmp_path / "o.mp4"), ws)
    with pytest.raises(BadInputError, match="not a readable video"):
        reenact(_config(fomm_ws, portrait, taken, tmp_path / "o.mp4"), ws)
    with pytest.raises(NotFoundError, match="no model"):
        reenact(_config(fomm_ws, portrait, driving, tmp_path / "o.mp4"), Workspace(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["taken.mp4"]


def test_cancel_writes_nothing(fomm_ws, driving: Path, tmp_path: Path):
    ws, _ = fomm_ws
    out = tmp_path / "out.mp4"
    cancel = CancelToken()

    def sink(event) -> None:
        if isinstance(event, Progress) and event.stage == "reenact":
            cancel.cancel()

    with pytest.raises(CancelledError, match="nothing was written"):
        reenact(_config(fomm_ws, footage("portrait_s12.jpg"), driving, out), ws, sink, cancel)
    assert list(tmp_path.iterdir()) == []


def test_the_driving_video_as_source_reconstructs_and_scores_l1(
    fomm_ws, driving: Path, tmp_path: Path
):
    """The paper's reconstruction setting: SOURCE is the driving video, its first frame the
    portrait, cut with its shot's box, so score can measure L1 against the driving crops."""
    from engine.reenact.score import score_reenactment

    ws, model = fomm_ws
    out = tmp_path / "rebuilt.mp4"
    result = reenact(_config(fomm_ws, driving, driving, out), ws)
    assert result.frames == FRAMES == len(_frames(out))
    scored = score_reenactment(ws, model, driving, out, driving, backend="mediapipe")
    assert scored.reconstruction
    assert scored.l1 is not None and 0.0 < scored.l1 < 1.0
