"""The shared occlusion_model fixture: a trained mask that convert and training load."""

from __future__ import annotations

import numpy as np

from engine.train.families.occlusion.inference import load_occlusion, occlusion_for
from engine.train.store import ModelPaths


def test_shared_model_loads_and_masks(occlusion_model: tuple) -> None:
    ws, name = occlusion_model
    model = load_occlusion(ws, name, device="cpu")
    assert model.step > 0 and model.size == 64
    assert set(model.settings.geometry) == {"a", "b"}  # keyed by faceset
    assert occlusion_for(ws, "a") == name
    assert (ModelPaths(ws.model_dir(name)).previews / "latest.png").is_file()
    crops = np.zeros((2, 64, 64, 3), np.uint8)
    assert model.predict(crops).shape == (2, 64, 64)
