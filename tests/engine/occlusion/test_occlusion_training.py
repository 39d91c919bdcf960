"""The occlusion family trains through the real Trainer (the shared `occlusion_model`:
32 px, 120 steps on the sample facesets): its mask IoU on held-out faces under
synthetic occluders rises from the untrained network's and beats the hull's (a mask
blind to occluders); a model fine-tuned with start_from begins with the other's
weights, is the one occlusion_for picks for its faceset, and resumes exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import torch

from engine.config import RunSettings, build
from engine.events import Started
from engine.train.checkpoint import load_checkpoint
from engine.train.families.occlusion.family import OcclusionFamily
from engine.train.families.occlusion.inference import load_occlusion, occlusion_for
from engine.train.families.occlusion.network import MaskNet
from engine.train.loop import train
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace


def _run(steps: int) -> RunSettings:
    return build(
        RunSettings,
        steps=steps,
        save_every=1000,
        preview_every=1000,
        snapshot_every=0,
        log_every=1,
        device="cpu",
        precision="fp32",
    )


def _weights(ws: Workspace, name: str) -> dict[str, torch.Tensor]:
    net = MaskNet(32, 8)
    load_checkpoint(ModelPaths(ws.model_dir(name)).checkpoint, net, None)
    return net.state_dict()


def test_held_out_iou_rises_and_beats_the_hull(occlusion_model: tuple) -> None:
    ws, name = occlusion_model
    paths = ModelPaths(ws.model_dir(name))
    settings = load_settings(paths.toml)
    family = OcclusionFamily(settings, ws)
    detail = family.load_data(torch.device("cpu"))  # the same held-out faces and textures
    assert detail["facesets"] == "a,b" and detail["held_out"] == 16
    assert set(settings.geometry) == {"a", "b"}  # keyed by faceset, for occlusion_for
    torch.manual_seed(settings.seed)  # as the Trainer seeds before it builds the network
    before = family.held_out_iou(family.build(), repeats=4)
    after = family.held_out_iou(load_occlusion(ws, name, "cpu").net, repeats=4)
    blind = family.held_out_iou(None, repeats=4)
    print(f"held-out IoU: untrained {before:.3f}, trained {after:.3f}, hull {blind:.3f}")
    assert after > before + 0.3
    assert after > blind + 0.02  # it learned what covers faces, not just where they are
    losses = [json.loads(line)["loss_mask"] for line in paths.metrics.read_text().splitlines()]
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])
    preview = cv2.imread(str(paths.previews / "latest.png"))
    assert preview.shape[1] == 3 * 32 * 2  # input | mask over it | target, doubled


@pytest.fixture
def workspace(occlusion_model: tuple, tmp_path: Path) -> Workspace:
    """A copy of the shared model's workspace, to train in without touching it."""
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(occlusion_model[0].root, ws.root)
    return ws


def test_fine_tuning_starts_from_the_generic_model_and_resumes_exactly(
    workspace: Workspace,
) -> None:
    generic = _weights(workspace, "occ")
    requested = {"preset": "occlusion-small", "size": 32, "batch_size": 4, "seed": 1}
    requested |= {"inputs": ["a"], "start_from": "occ"}
    first: dict[str, torch.Tensor] = {}

    def before_first_step(step: int, batch: dict) -> None:
        if step == 0:  # the "start" checkpoint holds the weights step 1 starts from
            first.update(_weights(workspace, "fine"))

    events: list = []
    train(workspace, "fine", requested, _run(2), events.append, step_hook=before_first_step)
    assert first and all(torch.equal(first[k], v) for k, v in generic.items())
    started = next(e for e in events if isinstance(e, Started))
    assert started.detail["start_from"] == "occ" and started.detail["facesets"] == "a"
    assert occlusion_for(workspace, "a") == "fine"  # the specific mask first
    assert occlusion_for(workspace, "b") == "occ"
    # Two steps in one run, or one step and a resumed second: the same weights.
    train(workspace, "split", requested, _run(1))
    train(workspace, "split", requested, _run(2))
    straight, resumed = _weights(workspace, "fine"), _weights(workspace, "split")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert not torch.equal(straight["head.weight"], generic["head.weight"])
