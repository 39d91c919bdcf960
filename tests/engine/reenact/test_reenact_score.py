"""Reenactment score: the driving crops scored as their own output measure 0; a shifted copy,
a trimmed one, another person's portrait and a pasted-back one measure what they should.

Outputs are made by hand from real footage (talk_d3's crops, cut as reenact cuts them), so
every expected figure is known; the model is conftest's random-weight fomm-small one (scoring
reads its size and step, never its weights). One test scores what reenact itself made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from footage import footage
from reenactscoreutil import MIN_FACE, driving_crops, write_lossless
from reenactutil import SIZE

from engine.errors import BadInputError, CancelledError, NotFoundError
from engine.events import CancelToken, Finished, Progress, Started, Warning
from engine.reenact.score import MIN_FACE as MIN_FACE_DEFAULT
from engine.reenact.score import score_reenactment

SHORT = 6  # frames of the trimmed output (the driving clip has 9)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, fomm_ws, driving: Path) -> dict:
    root = tmp_path_factory.mktemp("reenact_score")
    crops = driving_crops(driving)
    shifted = [np.roll(c, 3, axis=1) for c in crops]  # 3 px to the right, at the model's size
    ws, model = fomm_ws
    return {
        "ws": ws,
        "model": model,
        "driving": driving,
        "crops": crops,
        "same": write_lossless(root / "same.mp4", crops),
        "shifted": write_lossless(root / "shifted.mp4", shifted),
        "short": write_lossless(root / "short.mp4", crops[:SHORT]),
        "root": root,
    }


def run(setup: dict, output: str | Path, source: Path, **kwargs):
    out = setup[output] if isinstance(output, str) else output
    kwargs.setdefault("min_face", MIN_FACE)  # as driving_crops found the faces
    return score_reenactment(
        setup["ws"], setup["model"], setup["driving"], out, source, backend="dlib", **kwargs
    )


@pytest.fixture(scope="module")
def same(setup) -> tuple:
    """The crops as their own output, the driving video as the source (reconstruction)."""
    events: list = []
    result = run(setup, "same", setup["driving"], sink=events.append)
    return result, events


def test_driving_crops_as_output_measure_zero(same, setup):
    result, _ = same
    frames = len(setup["crops"])
    assert result.frames == result.output_frames == result.frames_compared == frames
    assert result.frames_scored == frames and result.frames_without_face == 0
    assert result.akd_px == 0.0 and result.akd_nme == 0.0
    assert result.reconstruction and not result.paste_back
    assert result.l1 == 0.0  # lossless output: the very pixels
    # Frame 0 is the source itself; the other frames are the same person talking.
    assert result.aed_frames == frames and result.aed is not None and 0.0 < result.aed < 0.4
    assert (result.step, result.size, result.backend) == (3, SIZE, "dlib")
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_events_start_progress_finish(same):
    result, events = same
    assert isinstance(events[0], Started) and events[0].detail["kind"] == "reenactment"
    scoring = [e for e in events if isinstance(e, Progress) and e.stage == "score"]
    assert scoring and scoring[-1].done == scoring[-1].total == result.frames
    assert not [e for e in events if isinstance(e, Warning)]
    assert isinstance(events[-1], Finished) and events[-1].stage == "score"
    assert events[-1].result == result.model_dump(mode="json")


def test_shifted_output_measures_the_shift(setup):
    result = run(setup, "shifted", setup["driving"])
    assert result.frames_scored == len(setup["crops"])
    # Every landmark moved 3 px (a fitter is not exact: within a pixel of it).
    assert result.akd_px == pytest.approx(3.0, abs=1.0)
    assert result.akd_nme > 0.05
    assert result.l1 is not None and result.l1 > 0.01


def test_trimmed_output_and_another_persons_portrait(same, setup):
    """The overlap is compared, with a warning; AED tells the source's person from another."""
    events: list = []
    result = run(setup, "short", footage("portrait_s12.jpg"), sink=events.append)
    assert (result.frames, result.output_frames) == (len(setup["crops"]), SHORT)
    assert result.frames_compared == result.frames_scored == SHORT
    warnings = [e.message for e in events if isinstance(e, Warning)]
    assert any(f"the first {SHORT} of each are compared" in w for w in warnings), warnings
    assert not result.reconstruction and result.l1 is None  # not the paper's reconstruction
    assert result.akd_px == 0.0  # motion is judged against the driving video, not the source
    assert result.aed is not None and result.aed > same[0].aed + 0.2
    assert result.aed > 0.6  # dlib's threshold for two people


def test_pasted_back_output_is_cut_with_the_portraits_box(setup):
    from engine.faces.finder import FaceFinder
    from engine.media.images import read_image
    from engine.reenact.crop import portrait_box

    portrait_path = footage("portrait_s12.jpg")
    portrait = read_image(portrait_path)
    box = portrait_box(portrait, FaceFinder(backend="dlib", min_face=MIN_FACE))
    pasted = [box.paste(portrait, crop) for crop in setup["crops"][:5]]
    output = write_lossless(setup["root"] / "pasted.mp4", pasted)
    result = run(setup, output, portrait_path, end=5 / 30)  # as after reenact --end: 5 frames
    assert result.paste_back and result.frames == result.frames_scored == 5
    # Pasting enlarges the crop and cutting shrinks it again: within a fraction of a pixel.
    assert result.akd_px is not None and result.akd_px < 0.5
    assert result.aed is not None and result.aed > 0.6  # the driving woman, not the portrait's


def test_what_reenact_made_is_scored_frame_for_frame(setup, tmp_path):
    """reenact's own output (random weights draw no face) is matched frame for frame."""
    from engine.config import ReenactConfig, build
    from engine.reenact.run import reenact

    portrait = footage("portrait_s12.jpg")
    out = tmp_path / "moved.mp4"
    config = build(
        ReenactConfig,
        source=portrait,
        driving=setup["driving"],
        output=out,
        model=setup["model"],
        backend="dlib",
    )
    made = reenact(config, setup["ws"])
    events: list = []
    # The finder's default smallest face, as reenact's: the same shots, the same boxes.
    result = run(setup, out, portrait, sink=events.append, min_face=MIN_FACE_DEFAULT)
    assert result.frames == result.output_frames == result.frames_compared == made.frames
    assert not result.paste_back and not result.reconstruction and result.l1 is None
    assert result.driving_missed == 0  # the driving side is real footage
    assert result.frames_scored + result.output_missed == made.frames
    json.dumps(result.model_dump(mode="json"), allow_nan=False)
    assert not any(isinstance(e, Warning) and "compared" in e.message for e in events)


def test_cancel_stops_with_cancelled_error(setup):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        run(setup, "same", setup["driving"], cancel=token)


def test_refusals(setup, tmp_path):
    with pytest.raises(NotFoundError, match="no model 'ghost'"):
        score_reenactment(setup["ws"], "ghost", setup["driving"], setup["same"], setup["driving"])
    image = footage("portrait_s4.jpg")
    with pytest.raises(BadInputError, match=r"DRIVING .* is not a video"):
        score_reenactment(setup["ws"], setup["model"], image, setup["same"], image)
    odd = write_lossless(tmp_path / "odd.mp4", [np.zeros((48, 80, 3), np.uint8)] * 2)
    with pytest.raises(BadInputError, match="neither the model's 64x64 faces"):
        run(setup, odd, setup["driving"])
    with pytest.raises(BadInputError, match="is a folder"):
        run(setup, "same", footage("portrait_s4.jpg").parent)


def test_a_swap_model_is_refused(setup, tmp_path):
    from engine.train.store import ModelPaths, create_model, new_settings
    from engine.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    settings = new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"})
    create_model(settings, ModelPaths(ws.model_dir("ae")))
    with pytest.raises(BadInputError, match=r"not a reenactment .* of family autoencoder"):
        score_reenactment(ws, "ae", setup["driving"], setup["same"], setup["driving"])
