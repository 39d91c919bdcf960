"""compare's pictures: the loss chart and the contact sheet, on the real sample clip."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import footage
import numpy as np
import pytest
from PIL import Image

from engine.compare.charts import (
    CHART_DPI,
    CHART_INCHES,
    COLOURS,
    ZOOM,
    LossSeries,
    SheetLayout,
    contact_sheet,
    loss_chart,
)
from engine.errors import BadInputError, NotFoundError
from engine.faces.backends import load_backend
from engine.faces.backends.base import FaceBackend
from engine.faces.types import Detection
from engine.media.video import VideoReader

ROOT = Path(__file__).resolve().parents[3]
CLIP = ROOT / "sample_data" / "clip_a.mp4"  # a real talking head, 384x384, 180 frames


def _reencode(
    src: Path, dst: Path, change: Callable[[np.ndarray], np.ndarray], limit: int | None = None
) -> Path:
    """`src` with `change` applied to every frame (the first `limit` only), timestamps kept,
    as convert writes its output."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        enc = out.add_stream("libx264", rate=stream.average_rate)
        enc.width, enc.height = stream.codec_context.width, stream.codec_context.height
        enc.pix_fmt = "yuv420p"
        enc.time_base = stream.time_base
        enc.options = {"crf": "18", "preset": "ultrafast"}
        for i, frame in enumerate(inp.decode(stream)):
            if limit is not None and i >= limit:
                break
            new = av.VideoFrame.from_ndarray(change(frame.to_ndarray(format="rgb24")), "rgb24")
            new.pts, new.time_base = frame.pts, frame.time_base
            for packet in enc.encode(new):
                out.mux(packet)
        for packet in enc.encode():
            out.mux(packet)
    return dst


def _invert(rgb: np.ndarray) -> np.ndarray:
    return 255 - rgb


def _gray(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stand-ins for converted clips: every frame inverted, grayscale, and inverted but cut
    short at frame 90."""
    folder = tmp_path_factory.mktemp("outputs")
    return {
        "inverted": _reencode(CLIP, folder / "inverted.mp4", _invert),
        "gray": _reencode(CLIP, folder / "gray.mp4", _gray),
        "short": _reencode(CLIP, folder / "short.mp4", _invert, limit=90),
    }


def _frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    wanted = set(indices)
    found = {}
    for index, rgb in VideoReader(path):
        if index in wanted:
            found[index] = rgb
        if index >= max(wanted):
            break
    return found


def _cell(sheet: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return sheet[y0:y1, x0:x1].astype(np.float32)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _face_width(backend, image: np.ndarray) -> float:
    found = backend.detect(np.ascontiguousarray(image.astype(np.uint8)))
    assert found, "no face in the cell"
    return max(d.width for d in found)


# ---- the contact sheet -------------------------------------------------------------------


def test_contact_sheet_shows_the_same_frames_of_every_video(tmp_path, outputs):
    path = tmp_path / "sheet.png"
    info = contact_sheet(
        CLIP, [("inverted", outputs["inverted"]), ("gray", outputs["gray"])], path, frames=4
    )

    # Header, then per frame a row of full frames and a row of zooms; 1 + 2 columns.
    layout = SheetLayout(columns=3, frames=4, width=320, cell_height=320)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert info.path == path
    assert info.size == layout.size == (sheet.shape[1], sheet.shape[0])
    assert sheet.shape[1] > 3 * 320 and sheet.shape[0] > 4 * (320 + 320)

    # Spread evenly (one per quarter), never the first or last frame; a face in each.
    assert len(info.frame_indices) == 4
    for k, index in enumerate(info.frame_indices):
        assert 180 * k / 4 <= index < 180 * (k + 1) / 4
        assert 0 < index < 179
    assert info.face_found == [True] * 4

    originals = _frames(CLIP, info.frame_indices)
    backend = load_backend("dlib", "hog")
    for row, index in enumerate(info.frame_indices):
        frame = originals[index]
        orig = _cell(sheet, layout.full_cell(row, 0))
        inverted = _cell(sheet, layout.full_cell(row, 1))
        gray = _cell(sheet, layout.full_cell(row, 2))
        # The original's cell is its frame `index`, scaled to the column.
        expected = cv2.resize(frame, (320, 320), interpolation=cv2.INTER_AREA)
        assert _diff(orig, expected) < 1.0
        # Each output's cell is that video's frame with the same index (H.264 aside): a
        # neighbouring frame, or the original's, would not match this closely.
        assert _diff(inverted, 255 - orig) < 6.0
        assert _diff(orig, 255 - orig) > 40
        assert np.abs(gray[..., 0] - gray[..., 2]).mean() < 3.0
        luma = cv2.cvtColor(orig.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
        assert np.abs(gray[..., 1] - luma).mean() < 6.0

        # The zoom: the same square cut from every column, not the full frame again.
        x0, y0, x1, y1 = info.boxes[row]
        assert x1 - x0 == y1 - y0 < 384
        zoom = _cell(sheet, layout.zoom_cell(row, 0))
        cut = cv2.resize(frame[y0:y1, x0:x1], (320, 320), interpolation=cv2.INTER_CUBIC)
        assert _diff(zoom, cut) < 1.0
        assert _diff(zoom, orig) > 10
        assert _diff(_cell(sheet, layout.zoom_cell(row, 1)), 255 - zoom) < 6.0
        # The square is the face's box grown ZOOM times (moved to stay inside the frame).
        face = max(backend.detect(frame), key=lambda d: d.width * d.height).box
        assert x0 <= face[0] and y0 <= face[1] and face[2] <= x1 and face[3] <= y1
        assert abs((x1 - x0) - min(384, ZOOM * (face[2] - face[0]))) <= 2


def test_contact_sheet_uses_only_frames_every_video_has(tmp_path, outputs):
    info = contact_sheet(CLIP, [("short", outputs["short"])], tmp_path / "s.png", frames=3)
    assert len(info.frame_indices) == 3
    assert all(0 < i < 89 for i in info.frame_indices)
    sheet = np.asarray(Image.open(info.path).convert("RGB"))
    layout = SheetLayout(columns=2, frames=3, width=320, cell_height=320)
    for row in range(3):
        orig = _cell(sheet, layout.full_cell(row, 0))
        assert _diff(_cell(sheet, layout.full_cell(row, 1)), 255 - orig) < 6.0


def test_contact_sheet_without_a_face_zooms_on_the_centre(tmp_path):
    # A moving gradient: no face anywhere.
    y, x = np.mgrid[0:120, 0:160]
    frames = [
        np.stack([(x + 4 * i) % 256, y * 2, np.full_like(x, 90)], axis=2).astype(np.uint8)
        for i in range(24)
    ]
    clip = footage.write_video(tmp_path / "plain.mp4", frames)
    info = contact_sheet(clip, [("same", clip)], tmp_path / "plain.png", frames=3, width=160)
    assert info.face_found == [False] * 3
    assert info.boxes == [(50, 30, 110, 90)] * 3  # half the shorter side, centred
    layout = SheetLayout(columns=2, frames=3, width=160, cell_height=120)
    sheet = np.asarray(Image.open(info.path).convert("RGB"))
    assert info.size == layout.size == (sheet.shape[1], sheet.shape[0])
    frame = _frames(clip, [info.frame_indices[0]])[info.frame_indices[0]]
    cut = cv2.resize(frame[30:90, 50:110], (160, 160), interpolation=cv2.INTER_CUBIC)
    assert _diff(_cell(sheet, layout.zoom_cell(0, 0)), cut) < 1.0


def test_contact_sheet_zooms_on_the_largest_of_two_faces(tmp_path):
    # The man with glasses (talk_d9) left, the woman (talk_d3, the larger face) right:
    # the larger face wins, not the first one found.
    frames = footage.side_by_side(
        footage.read_frames("talk_d9.mp4", 30, 12), footage.read_frames("talk_d3.mp4", 30, 12)
    )
    clip = footage.write_video(tmp_path / "two.mp4", frames)
    info = contact_sheet(clip, [("same", clip)], tmp_path / "two.png", frames=2)
    assert info.face_found == [True, True]
    backend = load_backend("dlib", "hog")
    first = _frames(clip, [info.frame_indices[0]])[info.frame_indices[0]]
    faces = sorted(backend.detect(first), key=lambda d: d.box[0])
    assert len(faces) == 2 and faces[1].width > faces[0].width  # the premise
    for x0, _, x1, _ in info.boxes:
        assert (x0 + x1) / 2 > 320
    # Zoomed: the face fills much more of its zoom cell than of the full-frame cell.
    layout = SheetLayout(columns=2, frames=2, width=320, cell_height=180)
    sheet = np.asarray(Image.open(info.path).convert("RGB"))
    assert info.size == layout.size
    zoom = _face_width(backend, _cell(sheet, layout.zoom_cell(0, 0)))
    # The full cell is half size: upsample it so HOG sees its faces.
    full = cv2.resize(_cell(sheet, layout.full_cell(0, 0)), (640, 360))
    assert zoom > 1.25 * _face_width(backend, full) / 2  # 1.86x by geometry; HOG steps


class _TwoBoxes(FaceBackend):
    """A detector that reports a small face first and a large one second, in every frame."""

    name = "two-boxes"

    def describe(self) -> str:
        return "two fixed boxes"

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [
            Detection(np.array([10, 10, 60, 60], np.float32), 2.0),
            Detection(np.array([200, 150, 300, 250], np.float32), 1.0),
        ]

    def landmarks(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        raise AssertionError("the sheet needs no landmarks")


def test_contact_sheet_zooms_on_the_largest_box_not_the_first(tmp_path):
    info = contact_sheet(CLIP, [], tmp_path / "s.png", frames=2, backend=_TwoBoxes())
    # The 100 px box grown 1.25x about its centre (250, 200): 125 px.
    assert ZOOM == 1.25 and info.boxes == [(188, 138, 313, 263)] * 2
    assert info.face_found == [True, True]


def test_contact_sheet_refuses_missing_and_unreadable_videos(tmp_path, outputs):
    with pytest.raises(NotFoundError) as missing:
        contact_sheet(CLIP, [("gone", tmp_path / "gone.mp4")], tmp_path / "x.png")
    assert "gone" in missing.value.message and missing.value.hint
    with pytest.raises(NotFoundError):
        contact_sheet(tmp_path / "nope.mp4", [("inv", outputs["inverted"])], tmp_path / "x.png")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(BadInputError) as bad:
        contact_sheet(junk, [("inv", outputs["inverted"])], tmp_path / "x.png")
    assert bad.value.hint
    assert not (tmp_path / "x.png").exists()


# ---- the loss chart ----------------------------------------------------------------------


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)


def _pixels_of(image: np.ndarray, colour: str) -> int:
    return int((np.abs(image.astype(np.int16) - _rgb(colour)).max(axis=2) <= 10).sum())


def _chart(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_loss_chart_draws_each_model_in_its_colour(tmp_path):
    steps = np.arange(1, 41)
    series = [
        LossSeries(
            "original",
            seconds=list(steps * 1.5),
            examples=list(steps * 64),
            losses={"a": list(0.3 / np.sqrt(steps)), "b": list(0.4 / np.sqrt(steps))},
        ),
        LossSeries(
            "lightweight",
            seconds=list(steps[:25] * 0.5),
            examples=list(steps[:25] * 128),
            losses={"a": list(0.2 / steps[:25]), "b": list(0.25 / steps[:25])},
        ),
        LossSeries("never-logged", seconds=[], examples=[], losses={"a": []}),
    ]
    path = loss_chart(series, tmp_path / "losses.png", title="alice2bob")
    assert path == tmp_path / "losses.png"
    image = _chart(path)
    width, height = (round(v * CHART_DPI) for v in CHART_INCHES)
    assert image.shape[:2] == (height, width)
    assert _pixels_of(image, COLOURS[0]) > 200
    assert _pixels_of(image, COLOURS[1]) > 200
    # The series with no points is left out: its colour is nowhere.
    assert _pixels_of(image, COLOURS[2]) == 0
    # The same colour in both panels.
    left, right = image[:, : width // 2], image[:, width // 2 :]
    for colour in COLOURS[:2]:
        assert _pixels_of(left, colour) > 100 and _pixels_of(right, colour) > 100


def test_loss_chart_with_nothing_logged_still_writes_a_chart(tmp_path):
    path = loss_chart([LossSeries("m", [], [], {})], tmp_path / "empty.png")
    image = _chart(path)
    width, height = (round(v * CHART_DPI) for v in CHART_INCHES)
    assert image.shape[:2] == (height, width)
    # (Grey is left out: the axes' antialiased text has greys of its own.)
    assert all(_pixels_of(image, colour) == 0 for colour in COLOURS if colour != "#7f7f7f")
    # "no losses logged" is written in the middle of each panel, away from its axes.
    band = image[round(0.4 * height) : round(0.52 * height)]
    for x0, x1 in ((0.15, 0.4), (0.65, 0.9)):
        text = band[:, round(x0 * width) : round(x1 * width)]
        assert (text.max(axis=2) < 80).sum() > 50
    assert loss_chart([], tmp_path / "none.png").exists()


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, engine.compare.charts; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
