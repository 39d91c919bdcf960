"""Occlusion models and label masks made in a moment, for tests of what uses them.

The model is a real one (model.toml through the store, a safetensors checkpoint of
a MaskNet), just never trained: seeded weights, so what it predicts is fixed and the
tests compare against its own `predict`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.faceset import Faceset
from engine.train.checkpoint import save_checkpoint
from engine.train.families.occlusion.inference import build_net
from engine.train.registry import CropGeometry, get_family, settings_model
from engine.train.store import ModelPaths, create_model
from engine.workspace import Workspace


def make_occlusion_model(
    ws: Workspace, name: str, facesets: tuple[str, ...] = ("a", "b"), trained: bool = True
) -> str:
    """Occlusion model `name` (32 px, width 4) covering `facesets`, with a checkpoint
    unless `trained` is False."""
    # The registry's settings class, not store.new_settings: no need of the family's trainer.
    values = {**get_family("occlusion").defaults("occlusion-small"), "size": 32, "width": 4}
    settings = settings_model("occlusion")(**values, preset="occlusion-small")
    geometry = {}
    for faceset in facesets:
        with Faceset.open(ws.faceset_dir(faceset)) as fs:
            coverage, size = float(fs.meta("coverage") or 0.75), fs.size
        geometry[faceset] = CropGeometry(coverage=coverage, crop_size=size)
    settings = settings.model_copy(update={"geometry": geometry})
    paths = ModelPaths(ws.model_dir(name))
    create_model(settings, paths)
    if trained:
        torch.manual_seed(0)
        net = build_net(settings)
        save_checkpoint(paths.checkpoint, net, {}, {}, {"step": 1})
    return name


def half_label(size: int) -> bytes:
    """A label PNG of `size` px: the left half covered (0), the right half face (255)."""
    label = np.full((size, size), 255, np.uint8)
    label[:, : size // 2] = 0
    return cv2.imencode(".png", label)[1].tobytes()
