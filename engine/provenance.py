"""Marking swapdeck's outputs as AI-generated, and reading the marks back.

Every frame and image convert writes carries two marks, because each fails differently:

- An invisible watermark in the pixels. It survives re-encoding (H.264 at CRF 23, JPEG at
  quality 75) but not resizing, cropping or rotation.
- Metadata that says so in words: container tags on videos; text chunks, EXIF, a JPEG
  comment and XMP (IPTC digital source type) on images. Re-encoding and uploads usually
  strip it, so `verify` reports it separately and decides "marked" from the watermark.

The watermark is invisible-watermark's `dwtDctSvd` method at a stronger scale: the U
(blue-difference) plane is split by a one-level Haar DWT, its approximation is cut into
4x4 blocks (8x8 pixels each), and each block's largest singular value is quantised to
carry one payload bit, the payload repeating over the blocks in raster order. Stock
imwatermark reads our marks back: `WatermarkDecoder("bits", 32).decode(bgr, "dwtDctSvd",
scales=[0, 72, 0])`. We run the same arithmetic on all blocks at once with numpy rather
than through `WatermarkEncoder`, whose per-block Python loop is about 3x slower and holds
the GIL (convert marks in a thread pool), which refuses frames under 256x256 pixels, and
which writes the changed chroma back into uint8 by truncation without clipping: at its
default step, 41 of 60 frames read back after CRF 18 then 23 through its wrapper, 59 here.
"""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

import av
import numpy as np
import pywt
from PIL import Image, PngImagePlugin

from engine import __version__
from engine.errors import BadInputError
from engine.media.images import is_image_path, read_image
from engine.media.paths import check_path, printable
from engine.media.video import VideoReader, is_video_path, probe_video
from engine.results import VerifyResult

# 32 bits, 15 of them ones: a flat frame reads every bit alike, and a balanced payload keeps
# such frames 15-17 bits away from it.
PAYLOAD: bytes = b"SWDK"
# Quantisation step of the singular values (imwatermark's default is 36). At 72 the mark
# reads back exactly on every frame after CRF 18 then CRF 28, at about 36 dB PSNR.
SCALE = 72.0
# A frame counts as marked when at most this many of the 32 bits read wrong. Unmarked frames
# measured 8 or more bits away; for random bits, 3 or fewer happens once in ~780,000.
MAX_BIT_ERRORS = 3
# A video counts as marked when this share of its checked frames carries the mark: unmarked
# footage measured 0, marked footage re-encoded down to CRF 35 still 0.28.
MARKED_FRACTION = 0.2
DEFAULT_MAX_FRAMES = 100

LABEL = f"AI-generated (face swap) by swapdeck {__version__}"
# Container tags; `comment` survives MP4, MOV and Matroska, `description` MP4 and Matroska.
VIDEO_METADATA: dict[str, str] = {"comment": LABEL, "description": LABEL}

_BITS = np.unpackbits(np.frombuffer(PAYLOAD, dtype=np.uint8))
_BLOCK = 4  # in the half-resolution DWT plane, so 8x8 pixels
# IPTC's term for media partly made by a trained model (a face composited into real footage).
_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about=""'
    ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    f' Iptc4xmpExt:DigitalSourceType="{_SOURCE_TYPE}"'
    f' xmp:CreatorTool="swapdeck {__version__}">'
    f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{LABEL}</rdf:li></rdf:Alt>'
    "</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="r"?>'
)
# Suffix -> Pillow format. BMP is left out: it has nowhere to put the label.
IMAGE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


# ---- the watermark --------------------------------------------------------------------------


def fits_mark(height: int, width: int) -> bool:
    """Whether a frame this size has a block for every payload bit (48x48 pixels will do)."""
    return (height // 8) * (width // 8) >= len(_BITS)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {rgb.shape} {rgb.dtype}")


def _u_plane(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's YUV U channel (what imwatermark marks), in float64 instead of uint8."""
    f = rgb.astype(np.float64)
    y = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return (f[..., 2] - y) * 0.492 + 128.0


def _to_blocks(plane: np.ndarray) -> np.ndarray:
    """(N, 4, 4) blocks in raster order; a ragged right/bottom edge is left out."""
    rows, cols = plane.shape[0] // _BLOCK, plane.shape[1] // _BLOCK
    grid = plane[: rows * _BLOCK, : cols * _BLOCK].reshape(rows, _BLOCK, cols, _BLOCK)
    return grid.transpose(0, 2, 1, 3).reshape(-1, _BLOCK, _BLOCK)


def _from_blocks(plane: np.ndarray, blocks: np.ndarray) -> None:
    rows, cols = plane.shape[0] // _BLOCK, plane.shape[1] // _BLOCK
    grid = blocks.reshape(rows, cols, _BLOCK, _BLOCK).transpose(0, 2, 1, 3)
    plane[: rows * _BLOCK, : cols * _BLOCK] = grid.reshape(rows * _BLOCK, cols * _BLOCK)


def mark_frame(rgb: np.ndarray) -> np.ndarray:
    """Return a copy of an RGB uint8 frame carrying swapdeck's invisible watermark.

    Thread-safe (no shared state). Frames too small for the payload (see `fits_mark`)
    raise BadInputError rather than leave the output silently unmarked.
    """
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    if not fits_mark(height, width):
        raise BadInputError(
            f"a {width}x{height} image is too small to carry swapdeck's watermark",
            "outputs must be at least 48x48 pixels",
        )
    h4, w4 = height // 4 * 4, width // 4 * 4
    u = _u_plane(rgb[:h4, :w4])
    approx, details = pywt.dwt2(u, "haar")
    blocks = _to_blocks(approx)
    # imwatermark takes the SVD of each block's DCT; the DCT is orthonormal, so the singular
    # values and the rank-one change below are the same without it.
    left, sv, right = np.linalg.svd(blocks)
    top = sv[:, 0]
    bits = np.resize(_BITS, len(top))
    target = (np.floor(top / SCALE) + 0.25 + 0.5 * bits) * SCALE
    blocks = blocks + (target - top)[:, None, None] * left[:, :, :1] * right[:, :1, :]
    _from_blocks(approx, blocks)
    du = pywt.idwt2((approx, details), "haar") - u
    # Move U alone: Y and V stay put when B and G change in this ratio (OpenCV's YUV2BGR).
    out = rgb.astype(np.float64)
    out[:h4, :w4, 2] += 2.032 * du
    out[:h4, :w4, 1] -= 0.395 * du
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def bit_errors(rgb: np.ndarray) -> int:
    """How many of the payload's 32 bits read wrong (all of them if the frame is too small)."""
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    if not fits_mark(height, width):
        return len(_BITS)
    h4, w4 = height // 4 * 4, width // 4 * 4
    approx, _ = pywt.dwt2(_u_plane(rgb[:h4, :w4]), "haar")
    top = np.linalg.svd(_to_blocks(approx), compute_uv=False)[:, 0]
    votes = (np.mod(top, SCALE) > SCALE / 2).astype(np.float64)
    slot = np.arange(len(votes)) % len(_BITS)
    ones = np.bincount(slot, weights=votes, minlength=len(_BITS))
    total = np.bincount(slot, minlength=len(_BITS))
    bits = ones * 2 >= total  # a tie reads as 1, as in imwatermark
    return int(np.count_nonzero(bits != _BITS.astype(bool)))


def read_mark(rgb: np.ndarray) -> bool:
    """Whether swapdeck's watermark reads back from an RGB uint8 frame."""
    return bit_errors(rgb) <= MAX_BIT_ERRORS


# ---- metadata ------------------------------------------------------------------------------


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010E] = LABEL  # ImageDescription
    exif[0x0131] = f"swapdeck {__version__}"  # Software
    return exif


def encode_image(rgb: np.ndarray, suffix: str) -> bytes:
    """Encode an (already marked) RGB frame as the format `suffix` names, labelled.

    .png: tEXt Software, Description, AI-Generated and XMP. .jpg/.jpeg: quality 95 with a
    comment, EXIF ImageDescription/Software and XMP. .webp: lossless, EXIF and XMP.
    .tif/.tiff: deflate, ImageDescription/Software. Anything else (BMP included, which
    cannot hold the label) raises BadInputError.
    """
    _check_rgb(rgb)
    fmt = IMAGE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise BadInputError(
            f"cannot write {suffix or 'suffix-less'} images with the AI-generated label",
            "name the output .png, .jpg, .webp or .tif",
        )
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"swapdeck {__version__}")
        info.add_text("Description", LABEL)
        info.add_text("AI-Generated", "true")
        info.add_itxt("XML:com.adobe.xmp", _XMP)
        image.save(buffer, "PNG", pnginfo=info)
    elif fmt == "JPEG":
        image.save(buffer, "JPEG", quality=95, comment=LABEL, exif=_exif(), xmp=_XMP.encode())
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", lossless=True, exif=_exif(), xmp=_XMP.encode())
    else:
        image.save(buffer, "TIFF", compression="tiff_deflate", exif=_exif())
    return buffer.getvalue()


def _says_ai(values: list[Any]) -> bool:
    """Whether any tag value carries swapdeck's label (tag names vary by container)."""
    for value in values:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        text = text.lower()
        if "ai-generated" in text and "swapdeck" in text:
            return True
    return False


def _image_metadata(path: Path) -> bool:
    with Image.open(path) as image:
        values = list(image.info.values()) + list(image.getexif().values())
    return _says_ai(values)


def _video_metadata(path: Path) -> bool:
    with av.open(str(path)) as container:
        values = list(container.metadata.values())
        for stream in container.streams:
            values += list(stream.metadata.values())
    return _says_ai(values)


# ---- verify --------------------------------------------------------------------------------


def _verify_image(path: Path, rgb: np.ndarray) -> dict[str, Any]:
    height, width = rgb.shape[:2]
    if not fits_mark(height, width):
        raise BadInputError(
            f"{path} is {width}x{height} pixels, too small to carry swapdeck's watermark",
            "there is nothing to check below 48x48 pixels",
        )
    marked = read_mark(rgb)
    return {
        "kind": "image",
        "frames_checked": 1,
        "frames_marked": int(marked),
        "metadata": _image_metadata(path),
    }


def _verify_video(path: Path, max_frames: int) -> dict[str, Any]:
    info = probe_video(path)
    if not fits_mark(info.height, info.width):
        raise BadInputError(
            f"{path} is {info.width}x{info.height} pixels, too small to carry the watermark",
            "there is nothing to check below 48x48 pixels",
        )
    # Up to max_frames evenly spaced frames; every frame is still decoded, only those converted.
    every = max(1, math.ceil(info.frames / max_frames)) if info.frames else 1
    reader = VideoReader(path, every=every)
    checked = marked = 0
    for _, rgb in itertools.islice(reader, max_frames):
        checked += 1
        marked += read_mark(rgb)
    if checked == 0:
        raise BadInputError(f"{path} has no frames to check ({reader.error})", "check the file")
    return {
        "kind": "video",
        "frames_checked": checked,
        "frames_marked": marked,
        "frames_total": info.frames,
        "metadata": _video_metadata(path),
    }


def verify(path: Path, max_frames: int | None = None) -> VerifyResult:
    """Read swapdeck's marks back from an image or a video.

    Returns kind ("image"/"video"), frames_checked, frames_marked, fraction, marked
    (fraction >= MARKED_FRACTION: the watermark decides, since re-encoding strips tags),
    metadata (whether a tag carries swapdeck's AI-generated label) and threshold. On video
    up to `max_frames` (default 100) evenly spaced frames are checked.
    """
    path = Path(path)
    limit = DEFAULT_MAX_FRAMES if max_frames is None else max_frames
    if limit < 1:
        raise BadInputError(f"max_frames must be at least 1, not {limit}", "use e.g. 100")
    if check_path(path, "image or video"):
        raise BadInputError(f"{path} is a folder", "give one image or video file")
    if is_image_path(path):
        result = _verify_image(path, read_image(path))
    elif is_video_path(path):
        result = _verify_video(path, limit)
    else:
        # By name only: FFmpeg would happily open a .txt file as a "video" of text.
        raise BadInputError(
            f"{path} is not named as an image or a video",
            "give an image (png, jpg, webp, tif) or a video (mp4, mov, mkv, webm); "
            "rename it if it is one",
        )
    fraction = result["frames_marked"] / result["frames_checked"]
    return VerifyResult(
        path=printable(path),
        marked=fraction >= MARKED_FRACTION,
        fraction=round(fraction, 4),
        threshold=MARKED_FRACTION,
        **result,
    )
