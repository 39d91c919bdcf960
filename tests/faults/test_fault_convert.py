"""SIGKILL a real `swapdeck convert` midway: OUTPUT is never half there, and a rerun works.

A new OUTPUT must not exist after the kill (only hidden temporaries beside it),
and the same command run again must write a whole video that plays. Killing a
run that was replacing an existing OUTPUT (--overwrite) must leave the old one
byte for byte as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from clips import info, short_clip
from cliutil import swapdeck_process
from faultutil import Running, copy_workspace, wait_for

pytestmark = [pytest.mark.report("convert kills survived"), pytest.mark.slow]


@pytest.fixture(scope="module")
def ws(sample_workspace, tiny_model, tmp_path_factory) -> Path:
    return copy_workspace(sample_workspace.root, tmp_path_factory.mktemp("fault_convert"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 1.2)


def _convert(ws: Path, clip: Path, out: Path, *extra: str) -> list[str | Path]:
    return ["convert", clip, "-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib", *extra]


def _kill_midway(args: list[str | Path], frames: int) -> None:
    with Running(*args, "--json") as run:
        midway = wait_for(lambda: run.progress_done() >= frames // 2 or run.proc.poll() is not None)
        assert midway and run.proc.poll() is None, f"ended before the kill: {run.stderr[-2000:]}"
        run.kill()
    assert run.progress_done() < frames and not run.of("finished")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_convert_leaves_no_output_and_no_damage(ws, clip, tmp_path, record_property):
    frames = info(clip)["frames"]
    out = tmp_path / "out" / "swapped.mp4"
    out.parent.mkdir()
    record_property("tried", 2)  # a kill writing a new OUTPUT, and one replacing it
    record_property("ok", 0)

    # A new OUTPUT: not there after the kill, and the same command then writes it whole.
    _kill_midway(_convert(ws, clip, out), frames)
    assert not out.exists()
    assert all(p.name.startswith(".") for p in out.parent.iterdir())
    again = swapdeck_process(*_convert(ws, clip, out))
    assert again.returncode == 0, again.stderr[-2000:]
    played = info(out)
    assert played["frames"] == frames and played["audio"] == ["aac"]
    record_property("ok", 1)

    # Replacing it (--overwrite): the old file stays, byte for byte, until a new one is whole.
    before = _sha(out)
    _kill_midway(_convert(ws, clip, out, "--overwrite", "--color", "none"), frames)
    assert _sha(out) == before
    assert info(out)["frames"] == frames
    record_property("ok", 2)
