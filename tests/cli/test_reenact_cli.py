"""`swapdeck reenact` as a user runs it: JSON events, one-line refusals, a detached job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cliutil import assert_fails, plain, swapdeck
from footage import footage
from PIL import Image
from reenactutil import fomm_model, talking

from engine.errors import ExitCode
from engine.provenance import verify
from engine.workspace import Workspace


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(workspace, fomm model, a 0.2 s driving clip with sound)."""
    root = tmp_path_factory.mktemp("reenact_cli")
    ws = Workspace(root / "ws")
    ws.ensure()
    return ws.root, fomm_model(ws), talking(root / "talk.mp4", 0.2)


def _args(setup, source: Path, output: Path, *extra: str) -> list[str | Path]:
    ws, model, driving = setup
    return [
        "reenact", source, driving, "-w", ws, "-m", model, "-o", output,
        "--backend", "mediapipe", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_json_events_and_the_result(setup, tmp_path: Path):
    out = tmp_path / "moved.mp4"
    result = swapdeck(*_args(setup, footage("portrait_s12.jpg"), out, "--best-frame", "--json"))
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "started" and events[0]["detail"]["best_frame"] is True
    assert {e["stage"] for e in events if e["type"] == "progress"} == {"plan", "reenact"}
    finished = events[-1]
    assert finished["type"] == "finished" and finished["result"]["outputs"] == [str(out)]
    assert finished["result"]["frames"] == 6 and finished["result"]["audio_streams"] == 1
    assert verify(out).marked


def test_the_human_summary_and_the_refusals(setup, tmp_path: Path):
    out = tmp_path / "moved.mp4"
    result = swapdeck(*_args(setup, footage("portrait_s12.jpg"), out, "--end", "0.1"))
    assert result.exit_code == 0, result.output
    assert f"{out}: 3 frames from 1 shot(s)" in plain(result.stdout)
    assert_fails(
        swapdeck(*_args(setup, footage("portrait_s12.jpg"), out)), ExitCode.BAD_INPUT, "exists"
    )
    wall = tmp_path / "wall.png"
    Image.new("RGB", (240, 240), (120, 120, 120)).save(wall)
    assert_fails(
        swapdeck(*_args(setup, wall, tmp_path / "o.mp4")), ExitCode.NO_FACES, "no face", "wall.png"
    )
    assert_fails(
        swapdeck(*_args(setup, footage("portrait_s12.jpg"), tmp_path / "o.mp4", "-m", "nope")),
        ExitCode.NOT_FOUND,
        "no model 'nope'",
    )
    assert not (tmp_path / "o.mp4").exists()


def test_detach_runs_a_preview_as_a_job(setup, tmp_path: Path):
    ws = setup[0]
    out = tmp_path / "try.png"
    args = _args(setup, footage("portrait_s12.jpg"), out, "--preview-frames", "1")
    result = swapdeck(*args, "--detach", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["kind"] == "reenact" and job["model"] == setup[1]
    assert job["command"][:2] == ["swapdeck", "reenact"] and "--preview-frames" in job["command"]
    state = Path(job["folder"]) / "job.json"
    deadline = time.monotonic() + 120
    while json.loads(state.read_text())["state"] in ("starting", "running"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    assert json.loads(state.read_text())["state"] == "finished"
    assert verify(out).marked
    # A typo is refused in the terminal, before any job starts.
    jobs = sorted((ws / "jobs").iterdir())
    assert_fails(swapdeck(*args, "--detach"), ExitCode.BAD_INPUT, "exists")
    assert sorted((ws / "jobs").iterdir()) == jobs
