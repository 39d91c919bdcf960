"""`swapdeck extract` and `swapdeck faceset` given bad input, through typer's CliRunner.

Every user mistake must end as one `error:` line on stderr naming the problem and a
specific exit code, never a traceback, and must leave an existing faceset exactly as
it was. One faceset is extracted once for the module (with --json, which the good-path
test reads) and the bad inputs are run against that same faceset name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clips import index_first
from cliutil import SAMPLE, assert_fails, swapdeck
from PIL import Image
from typer.testing import Result

from engine.errors import ExitCode

FACESET = "people"


# ---- helpers -----------------------------------------------------------------------------


def extract(ws: Path, name: str, *args: str | Path) -> Result:
    return swapdeck("extract", *args, "-w", ws, "-f", name, "--backend", "dlib")


def show(ws: Path, name: str = FACESET) -> dict[str, Any]:
    result = swapdeck("faceset", "show", name, "-w", ws, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def snapshot(ws: Path, name: str = FACESET) -> tuple[dict[str, str], dict[str, Any]]:
    """Every file of the faceset with its hash, and what `faceset show --json` says."""
    return file_hashes(ws / "facesets" / name), show(ws, name)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def face_photos(count: int, start: int = 0) -> list[Path]:
    photos = sorted((SAMPLE / "a").glob("*.jpg"))[start : start + count]
    assert len(photos) == count, "sample_data/a is missing photos"
    return photos


def copy_photos(dest: Path, count: int, start: int = 0) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for photo in face_photos(count, start):
        shutil.copy(photo, dest / photo.name)
    return dest


def faceless_images(folder: Path) -> Path:
    """A flat colour, a gradient and smooth noise: nothing a face detector should take."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    h, w = 240, 320
    flat = np.full((h, w, 3), (40, 120, 200), np.uint8)
    ramp = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    gradient = np.broadcast_to(ramp * np.array([1.0, 0.6, 0.2]), (h, w, 3)).astype(np.uint8)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for name, pixels in (("flat.png", flat), ("gradient.jpg", gradient), ("noise.png", noise)):
        Image.fromarray(pixels).save(folder / name)
    return folder


# ---- the shared faceset --------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A workspace with faceset FACESET from 4 sample photos, extracted with --json."""
    root = tmp_path_factory.mktemp("shared")
    photos = copy_photos(root / "photos", 4)
    ws = root / "ws"
    result = extract(ws, FACESET, photos, "--json")
    assert result.exit_code == 0, result.output
    return ws, result


@pytest.fixture
def ws(built: tuple[Path, Result]) -> Path:
    return built[0]


@pytest.fixture
def unchanged(ws: Path) -> Iterator[None]:
    """Asserts after the test that the shared faceset's files and rows are as before."""
    files, info = snapshot(ws)
    assert info["faces"] >= 1 and any(name.endswith(".png") for name in files)
    yield
    assert snapshot(ws) == (files, info)


# ---- sources that are not there or not readable ------------------------------------------


def test_missing_source_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "x.jpg"
    result = extract(tmp_path / "ws", "a", missing)
    line = assert_fails(result, ExitCode.NOT_FOUND, "does not exist")
    assert str(missing) in line


def test_path_with_square_brackets_is_shown_verbatim(tmp_path: Path) -> None:
    # Rich reads "[...]" as markup: an unescaped message lost or crashed on such paths.
    for missing in (tmp_path / "my [old] photos" / "x.jpg", tmp_path / "[/x]" / "y.jpg"):
        line = assert_fails(extract(tmp_path / "ws", "a", missing), ExitCode.NOT_FOUND)
        assert f"{missing} does not exist" in line


def test_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("not a photo")
    line = assert_fails(
        extract(tmp_path / "ws", "a", empty), ExitCode.BAD_INPUT, "holds no images or videos"
    )
    assert str(empty) in line


def test_random_bytes_named_jpg(ws: Path, tmp_path: Path, unchanged: None) -> None:
    junk = tmp_path / "x.jpg"
    junk.write_bytes(np.random.default_rng(1).integers(1, 255, 4096, dtype=np.uint8).tobytes())
    line = assert_fails(extract(ws, FACESET, junk), ExitCode.BAD_INPUT, "not an image")
    assert str(junk) in line


def test_text_file_named_jpg(ws: Path, tmp_path: Path, unchanged: None) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list: eggs, milk\n" * 20)
    line = assert_fails(extract(ws, FACESET, notes), ExitCode.BAD_INPUT, "not an image")
    assert str(notes) in line


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = face_photos(1)[0].read_bytes()
    half = tmp_path / "half.jpg"
    half.write_bytes(data[: len(data) // 2])
    ws = tmp_path / "ws"
    # The header is whole, so the file is only found damaged when decoded; the run then
    # still ends with the error rather than a silent success.
    line = assert_fails(extract(ws, "a", half), ExitCode.BAD_INPUT, str(half))
    assert "truncated" in line or "damaged" in line


@pytest.mark.parametrize("layout", ["as written", "index first"])
def test_truncated_video(ws: Path, tmp_path: Path, unchanged: None, layout: str) -> None:
    whole = SAMPLE / "clip_a.mp4"
    if layout == "index first":
        whole = tmp_path / "whole.mp4"
        index_first(SAMPLE / "clip_a.mp4", whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    line = assert_fails(extract(ws, FACESET, cut), ExitCode.BAD_INPUT, str(cut))
    assert "video" in line or "cut short" in line


def test_images_without_faces(ws: Path, tmp_path: Path) -> None:
    files, info = snapshot(ws)
    folder = faceless_images(tmp_path / "landscapes")
    assert_fails(extract(ws, FACESET, folder), ExitCode.NO_FACES, "no faces found")
    # The frames are recorded as done (so a rerun does not read them again), but no face
    # row and no face file may come or go.
    after_files, after = snapshot(ws)
    pngs = {k: v for k, v in files.items() if k.endswith(".png")}
    assert {k: v for k, v in after_files.items() if k.endswith(".png")} == pngs
    assert after["items"] == info["items"]
    assert after["faces"] == info["faces"]
    assert after["sources"][: len(info["sources"])] == info["sources"]
    assert all(s["faces"] == 0 for s in after["sources"][len(info["sources"]) :])


def test_images_without_faces_in_a_new_faceset(tmp_path: Path) -> None:
    folder = faceless_images(tmp_path / "landscapes")
    assert_fails(extract(tmp_path / "ws", "fresh", folder), ExitCode.NO_FACES, "no faces found")


# ---- workspaces that cannot be written ------------------------------------------------------


def test_workspace_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    photos = copy_photos(tmp_path / "photos", 1)
    line = assert_fails(extract(blocker / "ws", "a", photos), ExitCode.WORKSPACE, "not writable")
    assert str(blocker / "ws") in line
    assert blocker.read_text() == "a file, not a folder"


def test_workspace_is_a_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.write_text("oops")
    photos = copy_photos(tmp_path / "photos", 1)
    line = assert_fails(extract(ws, "a", photos), ExitCode.WORKSPACE, "is a file, not a folder")
    assert str(ws) in line
    assert ws.read_text() == "oops"


def permission_bits_bind(folder: Path) -> bool:
    """Whether a read-only folder stops this process: not root, or root without DAC override."""
    probe = folder / "probe"
    probe.mkdir(mode=0o500)
    try:
        (probe / "x").mkdir()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o700)
        shutil.rmtree(probe)
    return False


def test_workspace_in_read_only_folder(tmp_path: Path) -> None:
    if not permission_bits_bind(tmp_path):
        pytest.skip(f"euid {os.geteuid()} writes through permission bits (root in CI)")
    locked = tmp_path / "locked"
    locked.mkdir()
    photos = copy_photos(tmp_path / "photos", 1)
    locked.chmod(0o500)
    try:
        assert_fails(extract(locked / "ws", "a", photos), ExitCode.WORKSPACE, "not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


# ---- names and option values ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/abs"])
def test_faceset_name_must_be_plain(tmp_path: Path, name: str) -> None:
    photos = copy_photos(tmp_path / "photos", 1)
    ws = tmp_path / "deep" / "ws"
    before = tree(tmp_path)
    line = assert_fails(extract(ws, name, photos), ExitCode.BAD_INPUT, "not a plain name")
    assert repr(name) in line
    assert tree(tmp_path) == before  # not even the workspace was made


@pytest.mark.parametrize("name", ["../x", ".."])
def test_show_rejects_a_path_as_name(ws: Path, name: str) -> None:
    result = swapdeck("faceset", "show", name, "-w", ws)
    assert_fails(result, ExitCode.BAD_INPUT, "not a plain name")


@pytest.mark.parametrize(
    ("option", "value", "field"), [("--size", "10", "size"), ("--coverage", "5", "coverage")]
)
def test_bad_option_value(
    ws: Path, tmp_path: Path, unchanged: None, option: str, value: str, field: str
) -> None:
    photos = copy_photos(tmp_path / "photos", 1)
    line = assert_fails(
        extract(ws, FACESET, photos, option, value), ExitCode.BAD_INPUT, f"invalid {field}"
    )
    assert "--help" in line


def test_unicode_and_spaces_in_paths(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "my fäces 写真", 3)
    ws = tmp_path / "wörk space"
    result = extract(ws, "people", photos)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    info = show(ws, "people")
    assert info["faces"] >= 3
    assert {Path(s["path"]).name for s in info["sources"]} == {p.name for p in photos.iterdir()}
    assert all(str(photos) in s["path"] for s in info["sources"])


# ---- faceset show / prune --------------------------------------------------------------------


def test_show_missing_faceset(ws: Path) -> None:
    line = assert_fails(swapdeck("faceset", "show", "nosuch", "-w", ws), ExitCode.NOT_FOUND)
    assert "nosuch" in line and FACESET in line  # names the faceset and those that exist


def test_prune_needs_a_criterion(ws: Path, unchanged: None) -> None:
    result = swapdeck("faceset", "prune", FACESET, "-w", ws)
    assert_fails(result, ExitCode.BAD_INPUT, "nothing to prune", "--blur-below", "--id")


def test_prune_unknown_id(ws: Path, unchanged: None) -> None:
    result = swapdeck("faceset", "prune", FACESET, "-w", ws, "--id", "999999")
    assert_fails(result, ExitCode.BAD_INPUT, "no face with id 999999")


# ---- --json -----------------------------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    return [json.loads(line) for line in lines]


def test_json_failure_event(tmp_path: Path) -> None:
    missing = tmp_path / "gone.jpg"
    result = extract(tmp_path / "ws", "a", missing, "--json")
    assert result.exit_code == ExitCode.NOT_FOUND
    events = json_lines(result.stdout)
    assert events[-1]["type"] == "failed"
    assert events[-1]["exit_code"] == ExitCode.NOT_FOUND
    assert str(missing) in events[-1]["message"]
    assert "Traceback" not in result.output


def test_json_failure_event_for_bad_option(ws: Path) -> None:
    result = swapdeck("faceset", "prune", FACESET, "-w", ws, "--json")
    assert result.exit_code == ExitCode.BAD_INPUT
    (event,) = json_lines(result.stdout)
    assert (event["type"], event["exit_code"]) == ("failed", ExitCode.BAD_INPUT)


def test_json_good_path(built: tuple[Path, Result]) -> None:
    ws, result = built
    events = json_lines(result.stdout)  # every stdout line parses: nothing else is printed
    assert events[0]["type"] == "started"
    assert [e["type"] for e in events].count("finished") == 1
    last = events[-1]
    assert last["type"] == "finished"
    summary = last["result"]
    assert summary["frames"] == 4
    assert summary["faces"] >= 4
    assert summary["tracked"] == 0  # stills are never tracked
    assert summary["skipped"] >= 0
    assert summary["backend"] == "dlib"
    assert summary["faceset"] == FACESET
    assert summary["total_faces"] == show(ws)["faces"] == summary["faces"]
