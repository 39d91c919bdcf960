"""`swapdeck score` with a fomm model: a reenactment's AKD, AED and L1; refusals in one line."""

from __future__ import annotations

import pytest
from cliutil import assert_fails, plain
from reenactscoreutil import MIN_FACE, driving_crops, write_lossless
from reenactutil import fomm_model, talking
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import ExitCode
from engine.events import Finished, from_json
from engine.workspace import Workspace

runner = CliRunner()
FRAMES = 6  # of talk_d3


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    from engine.train.store import ModelPaths, create_model, new_settings

    root = tmp_path_factory.mktemp("score_reenact_cli")
    ws = Workspace(root / "ws")
    driving = talking(root / "talk.mp4", FRAMES / 30)
    # An autoencoder model, never trained: the dispatch refuses before loading anything.
    settings = new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"})
    create_model(settings, ModelPaths(ws.model_dir("ae")))
    return {
        "ws": str(ws.root),
        "model": fomm_model(ws),
        "driving": str(driving),
        "output": str(write_lossless(root / "out.mp4", driving_crops(driving)[:FRAMES])),
    }


def run(setup: dict, *args: str, model: str | None = None):
    common = ["-w", setup["ws"], "-m", model or setup["model"], "--backend", "dlib"]
    return runner.invoke(app, ["score", *args, *common, "--min-face", str(MIN_FACE)])


def test_json_ends_with_the_reenactment_scores(setup):
    driving, output = setup["driving"], setup["output"]
    result = run(setup, driving, output, "--source", driving, "--json")
    assert result.exit_code == 0, result.output
    events = [from_json(line) for line in result.stdout.splitlines()]
    assert events[0].type == "started" and events[0].detail["kind"] == "reenactment"
    assert {e.stage for e in events if e.type == "progress"} == {"shots", "score"}
    last = events[-1]
    assert isinstance(last, Finished) and last.stage == "score"
    scores = last.result
    assert scores["frames"] == scores["frames_scored"] == FRAMES
    assert scores["akd_px"] == 0.0 and scores["l1"] == 0.0 and scores["reconstruction"]


def test_people_get_a_table(setup):
    driving, output = setup["driving"], setup["output"]
    result = run(setup, driving, output, "--source", driving, "--end", "1")
    assert result.exit_code == 0, result.output
    out = plain(result.stdout)
    for label in ("AKD: keypoint distance (px)", "AED: identity distance", "L1 (reconstruction)"):
        assert label in out, out
    assert "reenactment at 64 px" in out


def test_a_fomm_model_needs_source(setup):
    result = run(setup, setup["driving"], setup["output"])
    assert_fails(result, ExitCode.BAD_INPUT, "needs --source PORTRAIT")


def test_a_reenactment_is_one_pair(setup):
    d = setup["driving"]
    result = run(setup, d, setup["output"], d, setup["output"], "--source", d)
    assert_fails(result, ExitCode.BAD_INPUT, "scored as DRIVING OUTPUT, got 4 path(s)")


def test_direction_is_refused_for_a_reenactment(setup):
    d = setup["driving"]
    result = run(setup, d, setup["output"], "--source", d, "--direction", "b-to-a")
    assert_fails(result, ExitCode.BAD_INPUT, "--direction is for swaps")


def test_source_is_refused_for_a_swap_model(setup):
    d = setup["driving"]
    result = run(setup, d, setup["output"], "--source", d, model="ae")
    needle = "--source: only for a reenactment (fomm models); model ae swaps faces"
    assert_fails(result, ExitCode.BAD_INPUT, needle)
