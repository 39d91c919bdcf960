"""Reading images of every common kind as upright RGB uint8."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import BadInputError
from engine.media.images import read_image


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = x
    rgb[..., 1] = 128
    rgb[:5, :, 2] = 255  # a marker along the top edge
    return rgb


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    img = Image.fromarray(_gradient())
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.shape == (40, 30, 3)  # width and height swapped
    # The top-edge marker is now along the right edge.
    assert out[:, -3:, 2].mean() > 200 and out[:, :3, 2].mean() < 60


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_modes_become_rgb8(tmp_path, mode):
    rgb = _gradient()
    if mode == "I;16":
        img = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
        assert img.mode.startswith("I;16")
        path = tmp_path / "deep.png"
    else:
        img = Image.fromarray(rgb).convert(mode)
        path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    # The left-to-right ramp survives the conversion.
    assert out[15, -1].astype(int).sum() > out[15, 0].astype(int).sum()


def test_text_named_jpg_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(BadInputError, match="not an image"):
        read_image(path)


def test_truncated_jpeg_is_refused(tmp_path):
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(full)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(BadInputError, match="damaged or truncated"):
        read_image(cut)
