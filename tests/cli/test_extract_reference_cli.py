"""`swapdeck extract --reference` with real photos: the errors must say what happened.

A reference photo of two people is refused (which one was meant is a guess), and a
run whose faces were all found but none matched the reference says so, with the
count, the closest distance and the threshold, instead of "no faces found".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cliutil import SAMPLE, assert_fails, swapdeck
from footage import fit, footage, read_frames, side_by_side
from PIL import Image
from typer.testing import Result

from engine.errors import ExitCode


def portrait(name: str, width: int = 360, height: int = 420) -> np.ndarray:
    return fit(np.asarray(Image.open(footage(name)).convert("RGB")), width, height)


def photo(path: Path, *halves: np.ndarray) -> Path:
    Image.fromarray(np.concatenate(halves, axis=1)).save(path, quality=95)
    return path


def sources(tmp_path: Path) -> Path:
    """Four photos of person A from the sample data."""
    folder = tmp_path / "a"
    folder.mkdir()
    for src in sorted((SAMPLE / "a").glob("*.jpg"))[:4]:
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


def extract(ws: Path, name: str, *args: str | Path) -> Result:
    return swapdeck("extract", *args, "-w", ws, "-f", name, "--backend", "dlib")


def test_a_reference_photo_of_two_people_is_refused(tmp_path: Path) -> None:
    two = photo(tmp_path / "two.jpg", portrait("portrait_s0.jpg"), portrait("portrait_s3.jpg"))
    one = photo(tmp_path / "one.jpg", portrait("portrait_s0.jpg"))
    ws = tmp_path / "ws"
    result = extract(ws, "x", sources(tmp_path), "--reference", one, "--reference", two)
    assert_fails(result, ExitCode.BAD_INPUT, str(two), "shows 2 faces", "crop it to the one")
    assert not (ws / "facesets" / "x" / "faces").is_dir() or not any(
        (ws / "facesets" / "x" / "faces").iterdir()
    )


@pytest.mark.slow
def test_no_match_says_how_many_were_found_and_how_close(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    ws = tmp_path / "ws"
    # Someone else entirely: every face of A is found, and every one is turned away.
    other = photo(tmp_path / "other.jpg", portrait("portrait_s3.jpg"))
    line = assert_fails(
        extract(ws, "only", folder, "--reference", other),
        ExitCode.NO_FACES,
        "no face matched the reference photo",
        "threshold 0.6",
        "raise --threshold or use another reference photo",
    )
    assert "min-face" not in line and "no faces found" not in line, line
    found = re.search(r"(\d+) faces found, the closest at distance ([\d.]+)", line)
    assert found, line

    # The count is every face the sources hold, as a run without a reference finds them.
    everyone = extract(ws, "all", folder, "--json")
    assert everyone.exit_code == 0, everyone.output
    finished = [json.loads(x) for x in everyone.stdout.splitlines() if '"finished"' in x]
    assert int(found.group(1)) == finished[-1]["result"]["faces"] > 0

    # Those frames are done in faceset "only": a rerun there looks at nothing again,
    # and says so instead of blaming the faces.
    again = extract(ws, "only", folder, "--reference", other, "--threshold", "0.9")
    line = assert_fails(again, ExitCode.NO_FACES, "extracted into faceset only before", "-f")
    assert "min-face" not in line, line

    # The closest distance is real: a threshold just above it keeps that face.
    closest = float(found.group(2))
    assert closest >= 0.6
    kept = extract(ws, "near", folder, "--reference", other, "--threshold", f"{closest + 0.01}")
    assert kept.exit_code == 0, kept.output


def test_a_video_frame_of_two_people_as_reference_is_refused(tmp_path: Path) -> None:
    # One frame of footage.two_people's kind: two talking heads side by side.
    (frame,) = side_by_side(read_frames("talk_d0.mp4", 0, 1), read_frames("talk_d3.mp4", 0, 1))
    ref = photo(tmp_path / "two_people.png", frame)
    result = extract(tmp_path / "ws", "x", sources(tmp_path), "--reference", ref)
    assert_fails(result, ExitCode.BAD_INPUT, "shows 2 faces", "crop it to the one person")
