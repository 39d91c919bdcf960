"""Hostile and odd media, each made here and sent through the command that reads it.

Rejected: files a user can hand swapdeck by mistake or on purpose (empty, cut short,
lying about their type or size, not a file at all, at a path the system cannot name).
Each must end as ONE `error:` line naming the file and the problem, its own exit code,
no traceback, quickly, and with the workspace exactly as it was.

Odd but valid: unusual colour modes, EXIF rotations, odd video sizes, irregular
timing and names that are not UTF-8 must simply work, with the right result.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import media_corpus as mc
import numpy as np
import pytest
from clips import index_first, info, read_frames, write_clip
from cliutil import assert_fails, assert_process_fails, swapdeck, swapdeck_process
from PIL import Image

from engine.errors import ExitCode
from engine.faceset import Faceset

REJECTED = pytest.mark.report("hostile inputs rejected cleanly")
READ = pytest.mark.report("odd but valid inputs read correctly")
FACESET = "a"  # the copied sample faceset that bad extracts are aimed at
QUICK_S = 15.0  # a refusal reads headers, never the whole file
BOMB_RSS = 512 * 1024 * 1024  # what a refused bomb may add to this process's peak memory


# ---- the shared workspace and how to tell it is untouched -------------------------------------


@pytest.fixture(scope="module")
def ws(sample_workspace: Any, tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session workspace: facesets a and b and model tiny."""
    root = tmp_path_factory.mktemp("media_corpus") / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def show(ws: Path, name: str) -> dict[str, Any]:
    result = swapdeck("faceset", "show", name, "-w", ws, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def untouched(ws: Path) -> Iterator[None]:
    """Every file of the workspace and what `faceset show` says, the same after the test."""
    before = file_hashes(ws), show(ws, FACESET)
    assert before[1]["faces"] > 0
    yield
    assert (file_hashes(ws), show(ws, FACESET)) == before


# ---- the corpus of files that must be refused ---------------------------------------------------


@dataclass(frozen=True)
class Bad:
    command: str  # extract | convert | verify | score
    make: Callable[[Path], Path]  # makes the file in a folder; returns the path to give
    code: int
    says: tuple[str, ...]  # what the error line must say, besides naming the file
    process: bool = False  # read by a real process with a timeout: in-process it could hang
    output: str = "out.mp4"  # convert's OUTPUT name
    bomb: bool = False  # must also be refused without allocating its claimed size
    reference: bool = False  # given as --reference beside a good source, not as the source
    names_output: bool = False  # the line names OUTPUT rather than the file made


def empty(name: str) -> Callable[[Path], Path]:
    return lambda d: mc.write(d, name, b"")


def symlink(name: str, target: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        os.symlink(target, d / name)
        return d / name

    return make


def folder(name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).mkdir()
        return d / name

    return make


def video_named(name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        return mc.small_video(d / "real.mp4").rename(d / name)

    return make


def cut_video(faststart: bool) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        whole = mc.small_video(d / "whole.mp4", frames=25)
        if faststart:
            whole = index_first(whole, d / "whole-faststart.mp4")
        # Three quarters: past the first frames, so an index-first file still opens.
        return mc.write(d, "cut.mp4", mc.cut(whole, 0.75))

    return make


def good_clip(d: Path) -> Path:
    return mc.small_video(d / "good.mp4")


def unreadable_images(d: Path) -> Path:
    photos = d / "photos"
    photos.mkdir()
    mc.write(photos, "empty.png", b"")
    mc.write(photos, "noise.jpg", mc.random_bytes(4096))
    return photos


BAD: dict[str, Bad] = {
    # extract: stills
    "extract zero-byte jpg": Bad("extract", empty("empty.jpg"), 2, ("empty",)),
    "extract zero-byte png": Bad("extract", empty("empty.png"), 2, ("empty",)),
    "extract truncated png": Bad(
        "extract", lambda d: mc.write(d, "cut.png", mc.png_of_face()[:4000]), 2, ("damaged",)
    ),
    "extract jpeg cut after its header": Bad(
        "extract",
        lambda d: mc.write(d, "head.jpg", mc.face_photo().read_bytes()[:400]),
        2,
        ("damaged",),
    ),
    "extract random bytes png": Bad(
        "extract", lambda d: mc.write(d, "noise.png", mc.random_bytes(8192)), 2, ("not an image",)
    ),
    "extract web page saved as jpg": Bad(
        "extract",
        lambda d: mc.write(d, "photo.jpg", b"<!DOCTYPE html><html><body>404</body></html>\n"),
        2,
        ("not an image",),
    ),
    "extract mp4 named jpg": Bad("extract", video_named("clip.jpg"), 2, ("is a video",)),
    "extract png bomb 60000x60000": Bad(
        "extract",
        lambda d: mc.write(d, "bomb.png", mc.bomb_png(60000, 60000)),
        2,
        ("too large",),
        bomb=True,
    ),
    "extract jpeg claiming 30000x30000": Bad(
        "extract",
        lambda d: mc.write(d, "huge.jpg", mc.jpeg_claiming(30000, 30000)),
        2,
        ("too large",),
        bomb=True,
    ),
    # extract: videos
    "extract zero-byte mp4": Bad("extract", empty("empty.mp4"), 2, ("empty",)),
    "extract audio-only m4a": Bad(
        "extract", lambda d: mc.audio_only(d / "voice.m4a"), 2, ("neither an image nor a video",)
    ),
    "extract audio-only mp4": Bad(
        "extract", lambda d: mc.audio_only(d / "voice.mp4"), 2, ("no video stream",)
    ),
    "extract jpeg named mp4": Bad(
        "extract",
        lambda d: mc.write(d, "holiday.mp4", mc.face_photo().read_bytes()),
        2,
        ("JPEG image, not a video",),
    ),
    "extract video claiming 16000x16000": Bad(
        "extract",
        lambda d: mc.write(d, "huge.mp4", mc.huge_y4m(16000, 16000)),
        2,
        ("16000x16000", "too large"),
        bomb=True,
    ),
    # extract: paths
    "extract file name of 300 chars": Bad(
        "extract", lambda d: d / ("n" * 300 + ".jpg"), 2, ("too long",)
    ),
    "extract path over PATH_MAX": Bad("extract", mc.deep_path, 2, ("too long",)),
    "extract symlink loop": Bad(
        "extract", symlink("loop.jpg", "loop.jpg"), 2, ("symbolic link loop",)
    ),
    "extract dangling symlink": Bad(
        "extract", symlink("gone.jpg", "nowhere.jpg"), 3, ("nowhere.jpg", "does not exist")
    ),
    "extract folder named x.jpg": Bad("extract", folder("x.jpg"), 2, ("holds no images",)),
    "extract fifo named x.jpg": Bad(
        "extract", lambda d: mc.fifo(d, "x.jpg"), 2, ("named pipe",), process=True
    ),
    # convert
    "convert jpeg named mp4": Bad(
        "convert",
        lambda d: mc.write(d, "holiday.mp4", mc.face_photo().read_bytes()),
        2,
        ("JPEG image, not a video",),
    ),
    "convert zero-byte mp4": Bad("convert", empty("empty.mp4"), 2, ("empty",)),
    "convert random bytes mp4": Bad(
        "convert",
        lambda d: mc.write(d, "noise.mp4", mc.random_bytes(65536)),
        2,
        ("not a readable video",),
    ),
    "convert truncated mp4": Bad("convert", cut_video(False), 2, ("cut short",)),
    "convert truncated index-first mp4": Bad("convert", cut_video(True), 2, ("cut short",)),
    "convert audio-only m4a": Bad(
        "convert", lambda d: mc.audio_only(d / "voice.m4a"), 2, ("no video stream",)
    ),
    "convert fifo named mp4": Bad(
        "convert", lambda d: mc.fifo(d, "x.mp4"), 2, ("named pipe",), process=True
    ),
    "convert OUTPUT name of 250 chars": Bad(
        "convert", good_clip, 2, ("too long",), output="o" * 250 + ".mp4", names_output=True
    ),
    "convert truncated png": Bad(
        "convert",
        lambda d: mc.write(d, "cut.png", mc.png_of_face()[:4000]),
        2,
        ("damaged",),
        output="out.png",
    ),
    "convert folder of unreadable images": Bad(
        "convert", unreadable_images, 2, ("none of the 2 images",), output="out"
    ),
    "convert reference that is a dangling symlink": Bad(
        "convert", symlink("ref.jpg", "nowhere.jpg"), 3, ("does not exist",), reference=True
    ),
    # --reference photos
    "extract reference that is a fifo": Bad(
        "extract", lambda d: mc.fifo(d, "ref.jpg"), 2, ("named pipe",), process=True, reference=True
    ),
    "extract reference png bomb": Bad(
        "extract",
        lambda d: mc.write(d, "ref.png", mc.bomb_png(60000, 60000)),
        2,
        ("too large",),
        bomb=True,
        reference=True,
    ),
    # verify
    "verify zero-byte mp4": Bad("verify", empty("empty.mp4"), 2, ("empty",)),
    "verify truncated png": Bad(
        "verify", lambda d: mc.write(d, "cut.png", mc.png_of_face()[:4000]), 2, ("damaged",)
    ),
    "verify png bomb 60000x60000": Bad(
        "verify",
        lambda d: mc.write(d, "bomb.png", mc.bomb_png(60000, 60000)),
        2,
        ("too large",),
        bomb=True,
    ),
    "verify fifo named png": Bad(
        "verify", lambda d: mc.fifo(d, "x.png"), 2, ("named pipe",), process=True
    ),
    "verify path over PATH_MAX": Bad(
        "verify", lambda d: mc.deep_path(d, leaf=mc.png_of_face()), 2, ("too long",)
    ),
    # score
    "score random bytes as the swapped mp4": Bad(
        "score",
        lambda d: mc.write(d, "swapped.mp4", mc.random_bytes(65536)),
        2,
        ("not a readable video",),
    ),
    "score video claiming 16000x16000": Bad(
        "score",
        lambda d: mc.write(d, "swapped.mp4", mc.huge_y4m(16000, 16000)),
        2,
        ("too large",),
        bomb=True,
    ),
}


def argv(case: Bad, path: Path, ws: Path, out_dir: Path) -> list[str | Path]:
    reference: list[str | Path] = ["--reference", path] if case.reference else []
    if case.command == "extract":
        source = mc.face_photo() if case.reference else path
        return ["extract", source, "-w", ws, "-f", FACESET, "--backend", "dlib", *reference]
    if case.command == "convert":
        source = good_clip(path.parent) if case.reference else path
        out = out_dir / case.output
        options = ["-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib"]
        return ["convert", source, *options, *reference]
    if case.command == "verify":
        return ["verify", path]
    original = good_clip(path.parent)
    return ["score", original, path, "-w", ws, "-m", "tiny", "--backend", "dlib"]


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.slow
@REJECTED
@pytest.mark.parametrize("case_id", list(BAD))
def test_hostile_file_is_rejected(case_id: str, ws: Path, tmp_path: Path, untouched: None) -> None:
    case = BAD[case_id]
    src, out_dir = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out_dir.mkdir()
    path = case.make(src)
    named = out_dir / case.output if case.names_output else path
    args = argv(case, path, ws, out_dir)
    rss, started = peak_rss(), time.monotonic()
    if case.process:
        line = assert_process_fails(swapdeck_process(*args, timeout=60), case.code, *case.says)
    else:
        line = assert_fails(swapdeck(*args), case.code, *case.says)
    seconds = time.monotonic() - started
    assert str(named) in line, f"the line does not name {named}: {line}"
    assert seconds < QUICK_S, f"took {seconds:.1f} s to refuse"
    if case.bomb:
        assert peak_rss() - rss < BOMB_RSS, "refused only after allocating its claimed size"
    assert list(out_dir.iterdir()) == []  # no output, not even a temporary one


@REJECTED
def test_unreadable_source_folder(ws: Path, tmp_path: Path, untouched: None) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(mc.face_photo(), locked / "face.jpg")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip(f"euid {os.geteuid()} reads through permission bits (root)")
        result = swapdeck("extract", locked, "-w", ws, "-f", FACESET, "--backend", "dlib")
        line = assert_fails(result, ExitCode.BAD_INPUT, "cannot list", "ermission")
        assert str(locked) in line
    finally:
        locked.chmod(0o700)


# ---- odd but valid stills: the face is found where the plain photo has it ---------------------


def rgb16_png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", rgb[..., ::-1].astype(np.uint16) * 257)
    assert ok
    return data.tobytes()


def gray16_png(rgb: np.ndarray) -> bytes:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    img = Image.fromarray(gray)
    assert img.mode.startswith("I;16")
    return mc.encoded(img, "PNG")


def with_alpha(rgb: np.ndarray, mode: str) -> bytes:
    """Opaque in the middle, fully transparent along a 24 px border."""
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[24:-24, 24:-24] = 255
    img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    return mc.encoded(img.convert(mode), "PNG")


ODD_STILLS: dict[str, tuple[str, Callable[[np.ndarray], bytes]]] = {
    "cmyk jpeg": (
        "cmyk.jpg",
        lambda rgb: mc.encoded(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95),
    ),
    "16-bit rgb png": ("deep.png", rgb16_png),
    "16-bit grey png": ("deep-grey.png", gray16_png),
    "greyscale jpeg": (
        "grey.jpg",
        lambda rgb: mc.encoded(Image.fromarray(rgb).convert("L"), "JPEG", quality=95),
    ),
    "palette png": (
        "palette.png",
        lambda rgb: mc.encoded(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE), "PNG"),
    ),
    "rgba png": ("alpha.png", lambda rgb: with_alpha(rgb, "RGBA")),
    "la png": ("grey-alpha.png", lambda rgb: with_alpha(rgb, "LA")),
    "png named jpg": ("really-a-png.jpg", lambda rgb: mc.encoded(Image.fromarray(rgb), "PNG")),
    "exif orientation 6": ("turned-6.jpg", lambda rgb: mc.rotated_with_exif(rgb, 6)),
    "exif orientation 8": ("turned-8.jpg", lambda rgb: mc.rotated_with_exif(rgb, 8)),
    "exif orientation 3": ("upside-down.jpg", lambda rgb: mc.rotated_with_exif(rgb, 3)),
    "lossless webp": (
        "face.webp",
        lambda rgb: mc.encoded(Image.fromarray(rgb), "WEBP", lossless=True),
    ),
}


def nme(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark distance over the distance between the eye centres (68-point layout)."""
    eyes = np.linalg.norm(truth[36:42].mean(axis=0) - truth[42:48].mean(axis=0))
    return float(np.linalg.norm(found - truth, axis=1).mean() / eyes)


@pytest.fixture(scope="module")
def odd_stills(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[np.ndarray]]:
    """Every odd still and the plain photo, named in ONE extract: each file's landmarks.

    One run keeps the module quick; each file is still named on the command line, so
    each goes through the header check and the read a single image would.
    """
    root = tmp_path_factory.mktemp("odd_stills")
    rgb = mc.face_rgb()
    paths = {"plain": mc.face_photo()}
    for case_id, (name, make) in ODD_STILLS.items():
        paths[case_id] = mc.write(root, name, make(rgb))
    ws = root / "ws"
    result = swapdeck("extract", *paths.values(), "-w", ws, "-f", "odd", "--backend", "dlib")
    assert result.exit_code == 0, result.output
    with Faceset.open(ws / "facesets" / "odd") as faceset:
        by_source = {str(s["path"]): int(s["id"]) for s in faceset.sources()}  # type: ignore[call-overload]
        faces = list(faceset.faces())
    return {
        case_id: [f.landmarks for f in faces if f.source_id == by_source[str(path.resolve())]]
        for case_id, path in paths.items()
    }


@READ
@pytest.mark.parametrize("case_id", list(ODD_STILLS))
def test_odd_still_is_read_upright(case_id: str, odd_stills: dict[str, list[np.ndarray]]) -> None:
    (truth,) = odd_stills["plain"]
    found = odd_stills[case_id]
    assert len(found) == 1, f"{len(found)} faces"
    # Upright and in the same place: a sideways read would put the landmarks far off.
    assert nme(found[0], truth) < 0.08


# ---- odd but valid folders, names and videos ------------------------------------------------


def json_events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@READ
def test_folder_with_loops_links_and_a_pipe_is_read_with_warnings(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(mc.face_photo(), photos / "face.jpg")
    os.symlink("loop.jpg", photos / "loop.jpg")  # a link to itself
    os.symlink(".", photos / "again")  # a folder link back to its own folder
    os.symlink("/nonexistent/x.png", photos / "gone.png")
    os.mkfifo(photos / "pipe.jpg")  # opening it would wait for a writer forever
    (photos / "folder.jpg").mkdir()
    ws = tmp_path / "ws"
    done = swapdeck_process(
        "extract", photos, "-w", ws, "-f", "p", "--backend", "dlib", "--json", timeout=120
    )
    assert done.returncode == 0, done.stderr
    events = json_events(done.stdout)
    assert events[-1]["type"] == "finished" and events[-1]["result"]["faces"] == 1
    warnings = " | ".join(e["message"] for e in events if e["type"] == "warning")
    for name in ("loop.jpg", "gone.png", "pipe.jpg"):
        assert name in warnings, warnings
    assert "symbolic link loop" in warnings and "does not exist" in warnings
    assert [s["path"] for s in show(ws, "p")["sources"]] == [str(photos / "face.jpg")]


@pytest.mark.slow
@READ
def test_name_that_is_not_utf8_is_stored_and_shown(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    odd = photos / os.fsdecode(b"face \xff\xfe.jpg")
    shutil.copy(mc.face_photo(), odd)
    ws = tmp_path / "ws"
    done = swapdeck_process("extract", odd, "-w", ws, "-f", "p", "--backend", "dlib", "--json")
    assert done.returncode == 0, done.stderr
    assert json_events(done.stdout)[-1]["result"]["faces"] == 1
    # Its bytes are kept as \xNN escapes: valid text for SQLite, JSON and the terminal.
    shown = str(photos / "face \\xff\\xfe.jpg")
    (source,) = show(ws, "p")["sources"]
    assert source["path"] == shown
    # The table for people, as a real process prints it (wide, so the path is one line).
    wide = {**os.environ, "COLUMNS": "500"}
    listing = swapdeck_process("faceset", "show", "p", "-w", ws, env=wide)
    assert listing.returncode == 0, listing.stderr
    assert shown in listing.stdout
    # Extracting it again finds the same source: nothing is added twice.
    again = swapdeck_process("extract", odd, "-w", ws, "-f", "p", "--backend", "dlib", "--json")
    assert again.returncode == 0, again.stderr
    assert show(ws, "p")["faces"] == 1


@READ
def test_odd_sized_video_with_unicode_names_converts_and_verifies(ws: Path, tmp_path: Path) -> None:
    frames = mc.gradient_frames(12, 97, 161)
    src = write_clip(tmp_path / "clip ünï 写真.mkv", frames, pix_fmt="yuv444p")
    out = tmp_path / "swapped ✓ 写真.mp4"
    result = swapdeck("convert", src, "-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib")
    # No face to swap: not a success, but the output is written (marked) all the same.
    assert_fails(result, ExitCode.NO_FACES, "no face was swapped")
    before, after = info(src), info(out)
    assert after["size"] == (161, 97)
    assert after["frames"] == before["frames"] == 12
    # No face here: every frame comes back as it went in (within the codec's loss).
    diff = np.abs(np.stack(read_frames(src)).astype(int) - np.stack(read_frames(out))).mean()
    assert diff < 3.0
    verdict = swapdeck("verify", out, "--json")
    assert verdict.exit_code == 0, verdict.output
    assert json.loads(verdict.stdout)["path"] == str(out)


@READ
def test_variable_frame_rate_video_keeps_its_timing(ws: Path, tmp_path: Path) -> None:
    src, pts = mc.vfr_video(tmp_path / "vfr.mp4")
    out = tmp_path / "out.mp4"
    result = swapdeck("convert", src, "-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib")
    assert_fails(result, ExitCode.NO_FACES, "no face was swapped")  # written all the same
    before, after = info(src), info(out)
    assert after["frames"] == before["frames"] == len(pts)
    seconds = [float(p * before["time_base"]) for p in before["pts"]]
    assert [float(p * after["time_base"]) for p in after["pts"]] == pytest.approx(seconds)
    gaps = np.diff(seconds)
    assert gaps.max() > 2.5 * gaps.min()  # the input really was irregular
