"""SIGKILL a real `swapdeck extract` midway through a video and a folder, then rerun it.

The resumed faceset must equal an uninterrupted run's: the same faces (keyed by
source, frame and index, with the same landmarks and the same PNG bytes), none
twice, every row with its file and every file with its row, no temporary file
left, and no worker process of the killed run left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil
import pytest
from cliutil import SAMPLE, swapdeck, swapdeck_process
from facesetutil import face_snapshot
from faultutil import Running, temp_files, wait_for

from engine.workspace import Workspace

pytestmark = [pytest.mark.report("extract kills survived"), pytest.mark.slow]


def _snapshot(root: Path, name: str = "x") -> dict[tuple[str, int, int], tuple]:
    return face_snapshot(Workspace(root).faceset_dir(name))


def _midway(run: Running, total: int) -> bool:
    progress = run.of("progress")
    return bool(progress) and (
        progress[-1]["done"] >= total // 4 and progress[-1]["counts"]["faces"] >= 2
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos") / "photos"
    folder.mkdir()
    for p in sorted((SAMPLE / "a").glob("*.jpg"))[:12]:
        shutil.copy(p, folder / p.name)
    return {"video": SAMPLE / "clip_a.mp4", "folder": folder}


def _args(source: Path, root: Path) -> list[str | Path]:
    return [
        "extract",
        source,
        "-w",
        root,
        "-f",
        "x",
        "--backend",
        "dlib",
        "--every",
        "6",
        "--size",
        "128",
    ]


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_killed_extract_resumes_to_the_uninterrupted_faceset(kind, sources, tmp_path):
    straight = swapdeck(*_args(sources[kind], tmp_path / "straight"))
    assert straight.exit_code == 0, straight.output
    expected = _snapshot(tmp_path / "straight")
    assert len(expected) >= 8

    root = tmp_path / "killed"
    with Running(*_args(sources[kind], root), "--json") as run:
        started = wait_for(lambda: run.of("started") or run.proc.poll() is not None)
        assert started and run.of("started"), run.stderr[-2000:]
        total = run.of("started")[0]["detail"]["frames"]
        # Midway: a quarter of the frames read and some faces committed (they trail the
        # reading), so the kill lands well before the end even on a busy machine.
        midway = wait_for(lambda: _midway(run, total) or run.proc.poll() is not None)
        assert midway and run.proc.poll() is None, "finished before it could be killed"
        workers = psutil.Process(run.proc.pid).children(recursive=True)
        run.kill()
    # Killed before it finished: on a busy machine the reading may be done by the time
    # the kill lands, with faces still to commit (the faceset below must be partial).
    assert not run.of("finished"), "finished before it could be killed"
    # The killed run's workers go too: nothing keeps holding models and memory.
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"worker processes outlived the killed extract: {alive}"

    partial = _snapshot(root)  # opening it sweeps what the kill cut in half
    assert 0 < len(partial) < len(expected)
    assert all(expected.get(key) == value for key, value in partial.items())
    assert not temp_files(root / "facesets")

    again = swapdeck_process(*_args(sources[kind], root), "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert _snapshot(root) == expected
    assert not temp_files(root / "facesets")
