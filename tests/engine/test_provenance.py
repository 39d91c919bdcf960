"""engine.provenance: the mark reads back, survives H.264, and unmarked media reads unmarked."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from imwatermark import WatermarkDecoder
from PIL import Image

from engine import provenance
from engine.errors import BadInputError, NotFoundError
from engine.media.images import read_image

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
CLIP = SAMPLE / "clip_a.mp4"
PHOTOS = sorted((SAMPLE / "a").glob("*.jpg"))


def clip_frames(count: int) -> list[np.ndarray]:
    with av.open(str(CLIP)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                return frames
    return frames


def write_h264(
    path: Path, frames: list[np.ndarray], crf: int, metadata: dict[str, str] | None = None
) -> None:
    with av.open(str(path), "w") as out:
        out.metadata.update(metadata or {})
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "fast"}
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())


def reencode(src: Path, dst: Path, crf: int) -> None:
    """What a video site or an editor does: decode, encode again, tags not copied."""
    with av.open(str(src)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    write_h264(dst, frames, crf)


@pytest.fixture(scope="module")
def marked_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 marked frames of the sample clip, written as convert does (CRF 18, tags set)."""
    path = tmp_path_factory.mktemp("provenance") / "marked.mp4"
    frames = [provenance.mark_frame(rgb) for rgb in clip_frames(30)]
    write_h264(path, frames, 18, provenance.VIDEO_METADATA)
    return path


# ---- frames -----------------------------------------------------------------------------


def test_sample_photos_read_back_marked_and_unmarked():
    for path in PHOTOS[::8]:
        rgb = read_image(path)
        marked = provenance.mark_frame(rgb)
        assert marked.shape == rgb.shape and marked.dtype == np.uint8
        assert provenance.read_mark(marked), path.name
        assert provenance.bit_errors(marked) == 0


def test_unmarked_photos_and_clip_frames_read_unmarked():
    frames = [read_image(p) for p in PHOTOS] + clip_frames(200)[::10]
    errors = [provenance.bit_errors(rgb) for rgb in frames]
    # Far from the threshold, not just over it: the nearest measured is 8+ bits away.
    assert min(errors) > provenance.MAX_BIT_ERRORS + 3, errors


def test_flat_and_noise_frames_read_unmarked():
    rng = np.random.default_rng(0)
    frames = [np.full((128, 128, 3), v, np.uint8) for v in (0, 128, 255)]
    frames += [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(10)]
    assert not any(provenance.read_mark(rgb) for rgb in frames)


def test_mark_is_faint_and_leaves_the_input_alone():
    rgb = clip_frames(1)[0]
    before = rgb.copy()
    marked = provenance.mark_frame(rgb)
    np.testing.assert_array_equal(rgb, before)
    mse = np.mean((marked.astype(np.float64) - rgb) ** 2)
    assert 10 * np.log10(255**2 / mse) > 34  # about 36 dB measured


def test_stock_imwatermark_reads_the_mark():
    """Our vectorised embedding is imwatermark's dwtDctSvd: its own decoder agrees."""
    rgb = read_image(PHOTOS[0])
    bgr = cv2.cvtColor(provenance.mark_frame(rgb), cv2.COLOR_RGB2BGR)
    decoder = WatermarkDecoder("bytes", 8 * len(provenance.PAYLOAD))
    scales = [0, int(provenance.SCALE), 0]
    assert decoder.decode(bgr, "dwtDctSvd", scales=scales) == provenance.PAYLOAD
    unmarked = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    assert decoder.decode(unmarked, "dwtDctSvd", scales=scales) != provenance.PAYLOAD


@pytest.mark.parametrize("shape", [(64, 64), (48, 48), (361, 641), (641, 361), (8, 256)])
def test_small_and_odd_sizes_round_trip(shape: tuple[int, int]):
    rgb = np.asarray(Image.open(PHOTOS[3]).convert("RGB").resize(shape[::-1]))
    marked = provenance.mark_frame(rgb)
    assert marked.shape == (*shape, 3)
    assert provenance.read_mark(marked)


def test_too_small_frame_is_refused_not_left_unmarked():
    rgb = np.full((40, 40, 3), 100, np.uint8)
    assert not provenance.fits_mark(40, 40) and provenance.fits_mark(48, 48)
    with pytest.raises(BadInputError, match="too small"):
        provenance.mark_frame(rgb)
    assert not provenance.read_mark(rgb)


def test_wrong_array_is_a_value_error():
    with pytest.raises(ValueError, match="uint8"):
        provenance.mark_frame(np.zeros((64, 64, 3), np.float32))


def test_marking_from_several_threads_matches_one_thread():
    frames = [read_image(p) for p in PHOTOS[:6]]
    alone = [provenance.mark_frame(rgb) for rgb in frames]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(provenance.mark_frame, frames * 2))
    for a, b in zip(alone * 2, together, strict=True):
        np.testing.assert_array_equal(a, b)


# ---- images -----------------------------------------------------------------------------


def test_png_carries_text_chunks_and_the_mark(tmp_path: Path):
    data = provenance.encode_image(provenance.mark_frame(read_image(PHOTOS[1])), ".png")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.text["AI-Generated"] == "true"
        assert "AI-generated" in image.text["Description"]
        assert image.text["Software"].startswith("swapdeck")
        assert "compositeWithTrainedAlgorithmicMedia" in image.text["XML:com.adobe.xmp"]
    path = tmp_path / "out.png"
    path.write_bytes(data)
    result = provenance.verify(path)
    assert result.kind == "image" and result.marked and result.metadata
    assert result.fraction == 1.0 and result.frames_checked == 1


def test_jpeg_carries_comment_exif_and_the_mark(tmp_path: Path):
    data = provenance.encode_image(provenance.mark_frame(read_image(PHOTOS[2])), ".JPG")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert b"AI-generated" in image.info["comment"]
        assert "AI-generated" in image.getexif()[0x010E]
        assert b"compositeWithTrainedAlgorithmicMedia" in image.info["xmp"]
    path = tmp_path / "out.jpg"
    path.write_bytes(data)
    result = provenance.verify(path)
    assert result.marked and result.metadata


@pytest.mark.parametrize("suffix", [".webp", ".tif"])
def test_webp_and_tiff_are_labelled_and_marked(tmp_path: Path, suffix: str):
    path = tmp_path / f"out{suffix}"
    path.write_bytes(provenance.encode_image(provenance.mark_frame(read_image(PHOTOS[4])), suffix))
    result = provenance.verify(path)
    assert result.marked and result.metadata


def test_bmp_is_refused_with_a_hint():
    with pytest.raises(BadInputError) as caught:
        provenance.encode_image(np.zeros((64, 64, 3), np.uint8), ".bmp")
    assert ".png" in caught.value.hint


def test_a_sample_photo_verifies_unmarked():
    result = provenance.verify(PHOTOS[0])
    assert not result.marked and not result.metadata and result.fraction == 0.0


# ---- video ------------------------------------------------------------------------------


def test_marked_video_verifies_marked_with_its_tags(marked_video: Path):
    result = provenance.verify(marked_video)
    assert result.kind == "video" and result.marked and result.metadata
    assert result.frames_checked == 30 and result.fraction >= 0.9


def test_tags_survive_writing_an_mp4(marked_video: Path):
    with av.open(str(marked_video)) as container:
        for key, value in provenance.VIDEO_METADATA.items():
            assert container.metadata[key] == value


def test_mark_survives_reencoding_at_crf_23(marked_video: Path, tmp_path: Path):
    copy = tmp_path / "reencoded.mp4"
    reencode(marked_video, copy, crf=23)
    result = provenance.verify(copy)
    assert result.marked and result.fraction >= 0.9
    assert not result.metadata  # the re-encode dropped the tags; the pixels still tell


def test_original_clip_verifies_unmarked():
    result = provenance.verify(CLIP)
    assert not result.marked and not result.metadata
    # The clip's 180 frames, every second one: 90 (the default limit is 100).
    assert result.fraction <= 0.02 and result.frames_checked == 90


def test_long_video_checks_evenly_spaced_frames(marked_video: Path):
    result = provenance.verify(marked_video, max_frames=10)
    assert result.frames_checked == 10 and result.marked  # frames 0, 3, ... 27
    assert provenance.verify(marked_video, max_frames=7).frames_checked <= 7


# ---- bad input --------------------------------------------------------------------------


def test_missing_file_is_not_found(tmp_path: Path):
    with pytest.raises(NotFoundError):
        provenance.verify(tmp_path / "nope.mp4")


@pytest.mark.parametrize("name", ["notes.mp4", "notes.png", "notes.txt"])
def test_text_file_is_bad_input(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(BadInputError) as caught:
        provenance.verify(path)
    assert str(path) in caught.value.message and caught.value.hint


def test_folder_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInputError, match="folder"):
        provenance.verify(tmp_path)
