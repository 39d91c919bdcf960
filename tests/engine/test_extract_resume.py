"""Cancel an extract midway, rerun it, and get exactly one uninterrupted run's faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from facesetutil import face_snapshot

from engine.config import ExtractConfig, build
from engine.errors import CancelledError
from engine.events import CancelToken, Progress
from engine.extract import extract
from engine.faceset import Faceset
from engine.workspace import Workspace


def _snapshot(ws: Workspace, name: str) -> dict[tuple[str, int, int], tuple]:
    return face_snapshot(ws.faceset_dir(name))


@pytest.fixture(scope="module")
def sources(tmp_path_factory, sample_data) -> list[Path]:
    folder = tmp_path_factory.mktemp("src") / "stills"
    folder.mkdir()
    for p in sorted((sample_data / "a").glob("*.jpg"))[:6]:
        shutil.copy(p, folder / p.name)
    return [folder, sample_data / "clip_a.mp4"]


def _config(sources: list[Path]) -> ExtractConfig:
    return build(ExtractConfig, sources=sources, faceset="x", backend="dlib", every=3, size=128)


@pytest.mark.slow
def test_cancelled_then_resumed_equals_uninterrupted(tmp_path, sources):
    straight = Workspace(tmp_path / "straight")
    result = extract(_config(sources), straight)
    expected = _snapshot(straight, "x")
    assert result.faces == len(expected) > 10

    resumed = Workspace(tmp_path / "resumed")
    token = CancelToken()
    seen: list[int] = []

    def sink(event) -> None:
        if isinstance(event, Progress):
            seen.append(event.done)
            if event.done >= 20:
                token.cancel()

    with pytest.raises(CancelledError):
        extract(_config(sources), resumed, sink, token)
    partial = _snapshot(resumed, "x")
    assert 0 < len(partial) < len(expected)
    # Everything saved before the cancel is exactly what the straight run saved.
    assert all(expected[k] == v for k, v in partial.items())

    again = extract(_config(sources), resumed)
    assert again.faces == len(expected) - len(partial)
    assert _snapshot(resumed, "x") == expected

    # A third run finds nothing left to do and adds nothing.
    third = extract(_config(sources), resumed)
    assert third.faces == 0 and third.frames == 0
    assert _snapshot(resumed, "x") == expected


def test_reopen_sweeps_orphans_and_rows_without_files(tmp_path, sources):
    ws = Workspace(tmp_path / "ws")
    extract(build(ExtractConfig, sources=[sources[0]], faceset="x", backend="dlib", size=128), ws)
    folder = ws.faceset_dir("x")
    with Faceset.open(folder) as fs:
        faces = list(fs.faces())
    assert len(faces) >= 5
    # As a crash would leave them: a PNG with no row, a row whose PNG is gone.
    (folder / "faces" / "9999-000000_0.png").write_bytes(b"orphan")
    (folder / "faces" / faces[0].file).unlink()
    with Faceset.open(folder) as fs:
        rows = {f.file for f in fs.faces()}
    files = {p.name for p in (folder / "faces").glob("*.png")}
    assert rows == files
    assert faces[0].file not in rows and "9999-000000_0.png" not in files
    assert len(rows) == len(faces) - 1
