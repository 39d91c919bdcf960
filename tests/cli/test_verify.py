"""`swapdeck verify` through typer's CliRunner: verdicts, exit codes, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from engine import provenance
from engine.cli import app
from engine.cli import verify as verify_cli
from engine.errors import ExitCode
from engine.media.images import read_image

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
CLIP = SAMPLE / "clip_a.mp4"
runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def swapdeck(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def marked_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 marked frames of the sample clip with swapdeck's tags, as convert writes them."""
    path = tmp_path_factory.mktemp("verify") / "swapped.mp4"
    with av.open(str(CLIP)) as src, av.open(str(path), "w") as out:
        out.metadata.update(provenance.VIDEO_METADATA)
        stream = out.add_stream("libx264", rate=25)
        size = src.streams.video[0].codec_context  # not rescaled: that would erase the mark
        stream.width, stream.height, stream.pix_fmt = size.width, size.height, "yuv420p"
        stream.options = {"crf": "18", "preset": "fast"}
        for index, frame in enumerate(src.decode(video=0)):
            if index == 12:
                break
            rgb = provenance.mark_frame(frame.to_ndarray(format="rgb24"))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_marked_video_json_exits_0(marked_video: Path):
    result = swapdeck("verify", marked_video, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["marked"] is True and data["fraction"] >= 0.9
    assert data["kind"] == "video" and data["metadata"] is True
    assert data["frames_checked"] == 12 and data["frames_marked"] >= 11


def test_unmarked_clip_json_exits_1():
    result = swapdeck("verify", CLIP, "--json", "--max-frames", "20")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["marked"] is False and data["fraction"] == 0.0
    assert data["frames_checked"] == 20 and data["metadata"] is False


def test_human_output_is_one_readable_line(marked_video: Path, tmp_path: Path):
    result = swapdeck("verify", marked_video)
    assert result.exit_code == 0
    line = _ANSI.sub("", result.stdout).strip()
    assert "\n" not in line
    assert "marked as AI-generated" in line and "12 of 12 frames" in line

    unmarked = swapdeck("verify", SAMPLE / "a" / "a_000.jpg")
    assert unmarked.exit_code == 1
    assert "not marked" in unmarked.stdout and "metadata label absent" in unmarked.stdout


def test_marked_png_exits_0(tmp_path: Path):
    path = tmp_path / "swapped.png"
    rgb = provenance.mark_frame(read_image(SAMPLE / "a" / "a_005.jpg"))
    path.write_bytes(provenance.encode_image(rgb, ".png"))
    result = swapdeck("verify", path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["kind"] == "image"


def test_missing_file_is_one_line_exit_3(tmp_path: Path):
    result = swapdeck("verify", tmp_path / "gone.mp4")
    assert result.exit_code == ExitCode.NOT_FOUND
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "gone.mp4" in lines[0]


def test_text_renamed_mp4_is_one_line_exit_2(tmp_path: Path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video at all\n" * 20)
    result = swapdeck("verify", path, "--json")
    assert result.exit_code == ExitCode.BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.mp4" in lines[0] and "not a readable video" in lines[0]
    assert json.loads(result.stdout)["type"] == "failed"


def test_tiny_image_is_refused_not_called_unmarked(tmp_path: Path):
    from PIL import Image

    path = tmp_path / "icon.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(path)
    result = swapdeck("verify", path)
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "too small" in result.stderr


def test_help_documents_the_exit_status():
    result = swapdeck("verify", "--help")
    assert result.exit_code == 0
    text = " ".join(_ANSI.sub("", result.stdout).split())
    assert "0 marked, 1 not marked" in text


def test_cli_default_matches_the_engine():
    assert verify_cli.DEFAULT_MAX_FRAMES == provenance.DEFAULT_MAX_FRAMES
