"""The fast-swap-small preset trains on the sample facesets: the total loss falls, a
preview shows input | output | nearest B photo, and it resumes without retraining its
lighting network.

B is the sample faceset `b`; the inputs default to every other faceset (`a`). VGG-19 is
a randomly initialised file under torchvision's name in a temporary torch hub cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import torch
import torch.hub

from engine.config import RunSettings, build
from engine.errors import BadInputError
from engine.events import Started
from engine.train.checkpoint import load_checkpoint
from engine.train.families.fast_swap.family import FastSwapNetworks, networks_of
from engine.train.loop import train
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace

STEPS = 24  # as conftest's fast_swap_model trains


def _requested(**more: object) -> dict[str, object]:
    """A small fast-swap model of B = `b`, its inputs left to default (every other faceset)."""
    base = {"preset": "fast-swap-small", "faceset_b": "b", "batch_size": 4, "seed": 3}
    return {**base, "light_steps": 8, "lr": 2e-3, **more}


def _run(steps: int) -> RunSettings:
    return build(
        RunSettings,
        steps=steps,
        save_every=steps,
        preview_every=steps,
        snapshot_every=0,
        log_every=1,
        device="cpu",
        precision="fp32",
    )


@pytest.fixture(scope="module")
def trained(fast_swap_model: tuple) -> dict[str, object]:
    ws, name, events = fast_swap_model
    paths = ModelPaths(ws.model_dir(name))
    lines = [json.loads(line) for line in paths.metrics.read_text().splitlines()]
    return {"ws": ws, "events": events, "lines": lines, "paths": paths}


def _load(paths: ModelPaths) -> FastSwapNetworks:
    nets = networks_of(load_settings(paths.toml))
    load_checkpoint(paths.checkpoint, nets, None)
    return nets


def test_total_loss_falls(trained: dict) -> None:
    lines = trained["lines"]
    totals = [
        sum(line[k] for k in ("loss_content", "loss_style", "loss_light", "loss_tv"))
        for line in lines
        if "loss_content" in line
    ]
    assert len(totals) >= STEPS // 2
    first, last = sum(totals[:5]) / 5, sum(totals[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_started_names_inputs_and_geometry(trained: dict) -> None:
    started = next(e for e in trained["events"] if isinstance(e, Started))
    assert started.detail["inputs"] == "a"
    assert started.detail["style_photos"] > 8
    settings = load_settings(trained["paths"].toml)
    assert settings.family == "fast-swap"
    assert set(settings.geometry) == {"a", "b"}


def test_preview_columns(trained: dict) -> None:
    preview = trained["paths"].previews / "latest.png"
    image = cv2.imread(str(preview))
    assert image is not None
    h, w = image.shape[:2]
    assert w == 3 * 64 * 2 and h % (64 * 2) == 0  # input | output | nearest photo, doubled
    # The output column differs from the input column: the network changed the faces.
    assert cv2.absdiff(image[:, :128], image[:, 128:256]).mean() > 2


def test_lighting_network_trained_once(trained: dict) -> None:
    nets = _load(trained["paths"])
    assert int(nets.light_ready[0]) == 1
    assert any(v.abs().sum() > 0 for v in nets.light.state_dict().values())


@pytest.fixture
def workspace(trained: dict, tmp_path: Path) -> Workspace:
    """A copy of the trained model's workspace, to train on without touching the shared one."""
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(trained["ws"].root, ws.root)
    return ws


def test_resume_goes_on_without_retraining_light(workspace: Workspace, torch_home: Path) -> None:
    paths = ModelPaths(workspace.model_dir("fs"))
    before = _load(paths)
    transform = {k: v.clone() for k, v in before.transform.state_dict().items()}
    result = train(workspace, "fs", _requested(), _run(STEPS + 4))
    assert result.steps == STEPS + 4
    after = _load(paths)
    for key, value in before.light.state_dict().items():
        assert torch.equal(after.light.state_dict()[key], value), key
    moved = [k for k, v in after.transform.state_dict().items() if not torch.equal(v, transform[k])]
    assert moved  # the transformation network trained on


def test_b_cannot_be_an_input(workspace: Workspace, torch_home: Path) -> None:
    with pytest.raises(BadInputError, match="person B's"):
        train(workspace, "fs-bad", _requested(inputs=["a", "b"]), _run(1))
    assert not workspace.model_dir("fs-bad").exists()


def test_no_other_person_is_refused(
    sample_workspace: Workspace, tmp_path: Path, torch_home: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.faceset_dir("b"), ws.root / "facesets" / "b")
    with pytest.raises(BadInputError, match="faces of other people"):
        train(ws, "lonely", _requested(), _run(1))
    assert not ws.model_dir("lonely").exists()
