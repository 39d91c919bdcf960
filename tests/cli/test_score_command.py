"""`swapdeck score`: JSON events or a table on success; one clear line on bad input."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from cliutil import assert_fails
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import ExitCode
from engine.events import Finished, from_json

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def write_clip(path: Path, count: int) -> Path:
    """The first `count` frames of the sample clip."""
    with av.open(str(SAMPLE / "clip_a.mp4")) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        size = inp.streams.video[0].codec_context
        stream.width, stream.height, stream.pix_fmt = size.width, size.height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index, frame in enumerate(inp.decode(video=0)):
            if index == count:
                break
            rgb = frame.to_ndarray(format="rgb24")
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score_cli")
    return {"clip": write_clip(root / "clip.mp4", 8), "short": write_clip(root / "short.mp4", 5)}


def run(workspace, model: str, *args: str):
    return runner.invoke(
        app, ["score", *args, "-w", str(workspace.root), "-m", model, "--backend", "dlib"]
    )


def test_json_lines_end_with_the_finished_result(sample_workspace, tiny_model, clips):
    clip = str(clips["clip"])
    result = run(sample_workspace, tiny_model, clip, clip, "--json")
    assert result.exit_code == 0, result.output
    events = [from_json(line) for line in result.stdout.splitlines()]
    assert events[0].type == "started"
    last = events[-1]
    assert isinstance(last, Finished) and last.stage == "score"
    video = last.result["videos"][0]
    assert video["frames"] == 8 and video["faces"] == 8
    assert video["expression"]["nme"] == 0.0
    assert video["identity"]["retrieval"] == 0.0
    assert video["stability"]["ratio"] == pytest.approx(1.0)
    assert set(last.result["average"]) == {"identity", "expression", "stability"}
    assert set(last.result["reconstruction"]) >= {"ssim_a", "ssim_b"}


@pytest.mark.slow
def test_people_get_a_table(sample_workspace, tiny_model, clips):
    clip = str(clips["clip"])
    result = run(sample_workspace, tiny_model, clip, clip, clip, clip)
    assert result.exit_code == 0, result.output
    out = _ANSI.sub("", result.stdout)
    for label in ("landmark error (NME)", "jitter ratio", "closer to target", "average"):
        assert label in out, out
    assert re.search(r"landmark error \(NME\)\s*│ 0\.0000\s*│ 0\.0000\s*│ 0\.0000", out), out
    assert "reconstruction SSIM" in out


def fails(code: int, result, needle: str) -> None:
    assert_fails(result, code, needle)


def test_missing_file(sample_workspace, tiny_model, clips, tmp_path):
    missing = str(tmp_path / "nope.mp4")
    result = run(sample_workspace, tiny_model, str(clips["clip"]), missing)
    fails(ExitCode.NOT_FOUND, result, "nope.mp4 does not exist")


def test_odd_number_of_paths(sample_workspace, tiny_model, clips):
    clip = str(clips["clip"])
    result = run(sample_workspace, tiny_model, clip, clip, clip)
    fails(ExitCode.BAD_INPUT, result, "pairs, got 3 path(s)")


def test_no_such_model(sample_workspace, clips):
    clip = str(clips["clip"])
    fails(ExitCode.NOT_FOUND, run(sample_workspace, "ghost", clip, clip), "no model 'ghost'")


def test_frame_count_mismatch(sample_workspace, tiny_model, clips):
    result = run(sample_workspace, tiny_model, str(clips["clip"]), str(clips["short"]), "--json")
    fails(ExitCode.BAD_INPUT, result, "has 8 frames but")
    failed = from_json(result.stdout.splitlines()[-1])
    assert failed.type == "failed" and failed.exit_code == ExitCode.BAD_INPUT
