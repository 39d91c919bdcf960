"""A checkpoint written by the trainer before model families still resumes, exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.config import RunSettings, build, read_toml
from engine.train.loop import train
from engine.workspace import Workspace

FIXTURE = Path(__file__).resolve().parent / "data" / "ckpt_v1"


def test_a_checkpoint_from_before_families_resumes_to_the_same_losses(
    facesets_ws: Path,
) -> None:
    ws = Workspace(facesets_ws)
    folder = ws.model_dir("old")
    folder.mkdir(parents=True)
    for name in ("model.toml", "checkpoint.safetensors"):
        shutil.copy(FIXTURE / name, folder / name)
    assert "family" not in read_toml(folder / "model.toml")  # as that trainer wrote it
    expected = json.loads((FIXTURE / "expected.json").read_text())
    run = build(
        RunSettings,
        steps=expected["resumed_to"],
        save_every=expected["resumed_to"],
        preview_every=1000,
        snapshot_every=0,
        log_every=1,
        precision="fp32",
    )
    result = train(ws, "old", {}, run)
    assert result.steps == expected["resumed_to"]
    # The same four steps the old trainer took from this checkpoint (fp32; another CPU's
    # kernels may round differently in the last bits).
    assert result.loss_a == pytest.approx(expected["loss_a"], rel=1e-4)
    assert result.loss_b == pytest.approx(expected["loss_b"], rel=1e-4)
    # Resuming wrote down what the old model.toml lacked: its family and crop geometry.
    upgraded = read_toml(folder / "model.toml")
    assert upgraded["family"] == "autoencoder"
    assert upgraded["geometry"]["a"] == {
        "coverage": 0.75,
        "crop_size": 256,
        "alignment": "umeyama-68",
    }
