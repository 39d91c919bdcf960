"""Hostile and odd media files, made on the spot for tests/inputs/test_input_media.py.

Every maker takes a folder and returns the path it made there (or, for paths the
system cannot even name, the path a user might type). Nothing here is committed as
a binary file: each file is built from the sample photos, numpy or PyAV.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from clips import write_clip
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def face_photo(index: int = 0) -> Path:
    photos = sorted((SAMPLE / "a").glob("*.jpg"))
    assert len(photos) > index, "sample_data/a is missing photos"
    return photos[index]


def face_rgb(index: int = 0) -> np.ndarray:
    with Image.open(face_photo(index)) as img:
        return np.asarray(img.convert("RGB"))


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ---- broken stills ---------------------------------------------------------------------------


def png_of_face() -> bytes:
    return encoded(Image.fromarray(face_rgb()), "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A real, tiny PNG whose header promises width x height RGB pixels.

    Its data holds a few rows only: a reader that allocates before it checks the
    size asks for width * height * 3 bytes (10 GB at 60000x60000) for nothing.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x80" * (3 * width), 9) if width < 100_000 else b""
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")
    )


def random_bytes(count: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8).tobytes()


# ---- videos ----------------------------------------------------------------------------------


def gradient_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Frames that change over time (so a frame-for-frame check means something)."""
    ramp = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    frames = []
    for i in range(count):
        shade = (ramp + 9 * i) % 256
        frame = np.stack([np.tile(shade, (height, 1))] * 3, axis=2)
        frame[..., 1] = 255 - frame[..., 1]
        frames.append(frame.astype(np.uint8))
    return frames


def small_video(path: Path, frames: int = 10, height: int = 96, width: int = 128) -> Path:
    return write_clip(path, gradient_frames(frames, height, width))


def vfr_video(path: Path, height: int = 96, width: int = 128) -> tuple[Path, list[int]]:
    """A variable-frame-rate clip: gaps of 33 to 120 ms, in a 1/1000 s time base."""
    gaps = [40, 40, 120, 33, 33, 80, 40, 100, 40, 40, 60, 40]
    pts = [0, *np.cumsum(gaps).tolist()]
    write_clip(
        path,
        gradient_frames(len(pts), height, width),
        rate=25,
        pts=pts,
        time_base=Fraction(1, 1000),
    )
    return path, pts


def audio_only(path: Path, fmt: str | None = None) -> Path:
    """Half a second of AAC and no video stream at all."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("aac", rate=44100)
        for i in range(22):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 44100
            frame.pts = i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def huge_y4m(width: int, height: int) -> bytes:
    """A YUV4MPEG2 stream whose header claims width x height frames, with 1 KB of data."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode()
    return header + b"FRAME\n" + b"\x80" * 1024


# ---- paths the system makes awkward ---------------------------------------------------------


def deep_path(folder: Path, min_length: int = 4200, leaf: bytes = b"") -> Path:
    """A real file at a path longer than PATH_MAX (4096), built one folder at a time.

    No call can reach it by its full name; the folders are made relative to an open
    descriptor of their parent.
    """
    segment = "d" * 200
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    path = folder
    try:
        while len(str(path)) < min_length:
            os.mkdir(segment, dir_fd=fd)
            child = os.open(segment, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, path = child, path / segment
        out = os.open("face.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        try:
            os.write(out, leaf or face_photo().read_bytes())
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return path / "face.jpg"


def fifo(folder: Path, name: str) -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def rotated_with_exif(rgb: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose pixels are stored turned and whose EXIF Orientation turns them back.

    Orientation 6 means "rotate 90 degrees clockwise to display", so the stored
    pixels are the upright picture turned 90 degrees counter-clockwise; 8 the other way.
    """
    turns = {6: 1, 8: -1, 3: 2}[orientation]
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, k=turns)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes())


def cut(path: Path, share: float) -> bytes:
    data = path.read_bytes()
    return data[: int(len(data) * share)]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG of a face whose frame header (SOF0) claims width x height pixels."""
    data = bytearray(encoded(Image.fromarray(face_rgb()), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    # Marker, length (2), precision (1), then height and width, big-endian.
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
