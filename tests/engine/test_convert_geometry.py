"""Convert needs the model, not its training facesets: model.toml keeps the crop geometry."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from clips import read_frames, short_clip

from engine.config import ConvertConfig, build, read_toml, save_toml
from engine.convert import convert
from engine.train.inference import load_trained
from engine.train.store import load_settings
from engine.workspace import Workspace


def _copy(sample_workspace: Workspace, tiny_model: str, root: Path) -> Workspace:
    shutil.copytree(sample_workspace.facesets_dir, root / "facesets")
    shutil.copytree(sample_workspace.model_dir(tiny_model), root / "models" / tiny_model)
    return Workspace(root)


def _convert(ws: Workspace, model: str, src: Path, out: Path) -> np.ndarray:
    config = build(ConvertConfig, input=src, output=out, model=model, backend="dlib")
    convert(config, ws)
    return np.stack(read_frames(out))


def test_convert_after_the_training_facesets_are_deleted_gives_the_same_video(
    sample_workspace: Workspace, tiny_model: str, tmp_path: Path
) -> None:
    ws = _copy(sample_workspace, tiny_model, tmp_path / "ws")
    geometry = read_toml(ws.model_dir(tiny_model) / "model.toml")["geometry"]
    assert geometry["a"] == {"coverage": 0.75, "crop_size": 256, "alignment": "umeyama-68"}
    src = short_clip(tmp_path / "short.mp4", 0.5)
    before = _convert(ws, tiny_model, src, tmp_path / "before.mp4")
    shutil.rmtree(ws.facesets_dir)
    after = _convert(ws, tiny_model, src, tmp_path / "after.mp4")
    assert before.shape == after.shape
    original = np.stack(read_frames(src))
    assert np.abs(before.astype(int) - original.astype(int)).max() > 0  # faces were swapped
    assert np.array_equal(before, after)


def test_an_older_model_learns_its_geometry_from_its_facesets(
    sample_workspace: Workspace, tiny_model: str, tmp_path: Path
) -> None:
    ws = _copy(sample_workspace, tiny_model, tmp_path / "ws")
    toml = ws.model_dir(tiny_model) / "model.toml"
    settings = load_settings(toml)
    save_toml(settings.model_copy(update={"geometry": {}}), toml)  # as models had it before
    assert not read_toml(toml).get("geometry")
    loaded = load_trained(ws, tiny_model, "cpu")
    assert loaded.geometry("b").crop_size == 256
    assert read_toml(toml)["geometry"]["b"]["coverage"] == 0.75
