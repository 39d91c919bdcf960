"""What the reenactment score tests add to reenactutil's: driving crops cut as reenact cuts
them, written losslessly so an output made of them decodes to the very pixels."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from reenactutil import SIZE

# The finder's smallest face in these tests (score is given the same): talk_d3's face is
# ~250 px, and at 80 dlib's HOG looks at 512-px frames without upsampling them (4x faster).
MIN_FACE = 80


def driving_crops(driving: Path, size: int = SIZE, min_face: int = MIN_FACE) -> list[np.ndarray]:
    """Each driving frame cut as reenact cuts it: its shot's box, at `size` px."""
    from engine.convert.video_io import decode, open_input
    from engine.faces.finder import FaceFinder
    from engine.reenact.crop import plan_shots

    shots = plan_shots(driving, FaceFinder(backend="dlib", min_face=min_face))
    boxes = [shot.box for shot in shots for _ in range(shot.frames)]
    assert all(box is not None for box in boxes), "talk_d3 shows a face throughout"
    frames = decode(open_input(driving, None, None))
    return [box.cut(f.rgb, size) for box, f in zip(boxes, frames, strict=True)]  # type: ignore[union-attr]


def write_lossless(path: Path, frames: list[np.ndarray], rate: int = 30) -> Path:
    """RGB frames as a lossless video (libx264rgb, crf 0): decoding gives them back exactly."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264rgb", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path
