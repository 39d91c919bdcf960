"""What the reenact tests share: a fomm model with random weights and short real clips.

A random fomm-small model at 64 px runs every part of reenact (keypoints, motion,
generator) in a fraction of a second a frame on a CPU; what it draws is noise, which
the tests never judge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clips import short_clip
from footage import fit_all, footage, read_frames, side_by_side, write_video

from engine.workspace import Workspace

SIZE = 64


def fomm_model(workspace: Workspace, name: str = "fomm") -> str:
    """A fomm-small model at SIZE px with random (seeded) weights, saved as training saves one."""
    import torch

    from engine.train.checkpoint import save_checkpoint
    from engine.train.families.fomm.networks import build_networks
    from engine.train.store import ModelPaths, create_model, new_settings

    settings = new_settings({"preset": "fomm-small", "size": SIZE})
    paths = ModelPaths(workspace.model_dir(name))
    create_model(settings, paths)
    torch.manual_seed(0)
    save_checkpoint(paths.checkpoint, build_networks(settings), {}, {}, {"step": 3})
    return name


def talking(path: Path, seconds: float) -> Path:
    """The first `seconds` of talk_d3 (30 fps, 512 px, with its sound)."""
    return short_clip(path, seconds, footage("talk_d3.mp4"))


def cut_clip(path: Path, frames: int = 5) -> Path:
    """Three shots of `frames` frames each: talk_d3; a plain wall (no face); talk_d3 beside
    talk_d9 (two people). 640x360, with talk_d3's sound."""
    one = fit_all(read_frames("talk_d3.mp4", 60, frames))
    wall = [np.full((360, 640, 3), (90, 120, 150), np.uint8) for _ in range(frames)]
    two = side_by_side(
        read_frames("talk_d3.mp4", 200, frames), read_frames("talk_d9.mp4", 200, frames)
    )
    return write_video(path, one + wall + two, audio_from="talk_d3.mp4")
