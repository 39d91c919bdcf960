"""Reading still images as RGB uint8, whatever they were stored as."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadInputError
from engine.media.paths import check_path

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# Larger than any real photo; stops decompression bombs before they allocate.
MAX_PIXELS = 120_000_000


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img)
        gray = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas become mid-grey rather than black, which no detector sees as skin.
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(back, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _too_large(path: Path, size: str) -> BadInputError:
    return BadInputError(
        f"{path} is {size} pixels, too large to be a photo",
        f"resize it below {MAX_PIXELS // 1_000_000} megapixels",
    )


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """Open an image lazily, refusing decompression bombs before any pixel is decoded.

    Pillow warns above 89 megapixels and refuses above twice that; its warning is
    silenced in favour of our own limit, its refusal becomes the same clear error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise _too_large(path, f"{w}x{h}")
                yield img
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, f"{int(found[1]):,}" if found else "too many") from None


def read_image(path: Path) -> np.ndarray:
    """Return an HxWx3 uint8 RGB array, EXIF orientation applied.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted.
    """
    if check_path(path, "image"):
        raise BadInputError(f"{path} is a folder, not an image", "give an image file")
    try:
        with open_image(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return np.ascontiguousarray(_to_rgb8(img))
    except BadInputError:
        raise
    except UnidentifiedImageError:
        raise BadInputError(
            f"{path} is not an image this tool can read",
            "check the file; supported: jpg, png, bmp, tif, webp",
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(
            f"{path} is damaged or truncated ({exc})", "re-export or remove the file"
        ) from None
