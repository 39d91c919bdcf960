"""What the reenactment score tests share: a random-weight fomm model and real driving crops."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from clips import short_clip
from footage import footage

from engine.workspace import Workspace

SIZE = 64  # the fomm-small preset's smallest size: scoring needs no trained weights
SECONDS = 0.4  # of talk_d3 (30 fps): 12 frames
# The finder's smallest face in these tests (score is given the same): talk_d3's face is
# ~250 px, and at 80 dlib's HOG looks at 512-px frames without upsampling them (4x faster).
MIN_FACE = 80


def fomm_model(workspace: Workspace, name: str = "fs", step: int = 7) -> str:
    """A fomm-small model at SIZE px with random weights, saved as training saves one."""
    from engine.train.checkpoint import save_checkpoint
    from engine.train.families.fomm.networks import build_networks
    from engine.train.store import ModelPaths, create_model, new_settings

    settings = new_settings({"preset": "fomm-small", "size": SIZE})
    paths = ModelPaths(workspace.model_dir(name))
    create_model(settings, paths)
    save_checkpoint(paths.checkpoint, build_networks(settings), {}, {}, {"step": step})
    return name


def driving_clip(folder: Path, seconds: float = SECONDS) -> Path:
    """The first `seconds` of a real talking clip (with its sound)."""
    return short_clip(folder / "driving.mp4", seconds, footage("talk_d3.mp4"))


def driving_crops(driving: Path, size: int = SIZE) -> list[np.ndarray]:
    """Each driving frame cut as reenact cuts it: its shot's box, at `size` px."""
    from engine.convert.video_io import decode, open_input
    from engine.faces.finder import FaceFinder
    from engine.reenact.crop import plan_shots

    shots = plan_shots(driving, FaceFinder(backend="dlib", min_face=MIN_FACE))
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
