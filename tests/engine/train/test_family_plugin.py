"""A new kind of model is one new family: a throwaway one, declared in this test, trains,
saves, resumes and previews through the normal CLI without any change to the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
import torch
from cliutil import swapdeck
from safetensors import safe_open
from torch import nn

from engine.train import registry
from engine.train.data import load_faces
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.workspace import Workspace, atomic_write_bytes

INFO = registry.FamilyInfo(
    name="throwaway",
    help="a one-layer face blur, for testing the training seam",
    implementation="unused:Unused",  # given directly to register() below
    facesets=("faceset_a",),
    presets=(registry.Preset("throwaway", "test preset", values={"width": 4}),),
    options=(
        registry.Option("faceset_a", "faceset", None, "faces to learn", flag=True),
        registry.Option("width", "int", 8, "hidden channels", ge=1, le=64),
        registry.Option("batch_size", "int", 4, "faces per step", ge=1, flag=True),
        registry.Option("lr", "float", 1e-3, "learning rate", gt=0, flag=True),
    ),
)


class Throwaway(Family):
    """Two convolutions, each with its own optimizer (as a GAN's two networks would be)."""

    info: ClassVar = INFO
    loss_names: ClassVar[tuple[str, ...]] = ("recon",)

    def load_data(self, device: torch.device) -> dict[str, Any]:
        s: Any = self.settings
        self.data = load_faces(self.workspace, s.faceset_a, 32).to(device)
        return {"faces": len(self.data)}

    @property
    def examples_per_step(self) -> int:
        return int(self.settings.batch_size)  # type: ignore[attr-defined]

    def build(self) -> nn.Module:
        width = int(self.settings.width)  # type: ignore[attr-defined]
        return nn.ModuleDict(
            {"down": nn.Conv2d(3, width, 3, padding=1), "up": nn.Conv2d(width, 3, 3, padding=1)}
        )

    def forward_module(self, networks: nn.Module) -> nn.Module:
        return nn.Sequential(networks["down"], nn.ReLU(), networks["up"])

    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        lr = float(self.settings.lr)  # type: ignore[attr-defined]
        return {
            "main": make_optimizer(networks["down"], lr),
            "head": make_optimizer(networks["up"], lr / 2),
        }

    def train_step(self, ctx: StepContext) -> StepResult:
        n = (int(self.settings.batch_size),)  # type: ignore[attr-defined]
        idx = torch.randint(len(self.data), n, generator=ctx.generator, device=ctx.device)
        x = self.data.faces[idx].float() / 255
        with ctx.autocast():
            loss = (ctx.forward(x).float() - x).abs().mean()
        ctx.optimize(loss, self.optims["main"], self.networks["down"].parameters())
        with ctx.autocast():
            loss2 = (ctx.forward(x).float() - x).abs().mean()
        ctx.optimize(loss2, self.optims["head"], self.networks["up"].parameters())
        return StepResult(float(loss2.detach()), {"loss_recon": float(loss2.detach())})

    @torch.no_grad()
    def preview(self, networks: nn.Module, path: Path) -> Path:
        x = self.data.held_faces.float() / 255
        y = self.forward_module(networks)(x).clamp(0, 1)
        grid = torch.cat([x, y], dim=3)[0].permute(1, 2, 0).cpu().numpy()
        ok, png = cv2.imencode(".png", (grid * 255).astype(np.uint8))
        assert ok
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, png.tobytes())
        return path


@pytest.fixture
def throwaway_family():
    registry.register(INFO, Throwaway)
    yield INFO
    registry.unregister(INFO.name)


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _train(ws: Path, model: str, steps: int, *extra: str) -> list[dict[str, Any]]:
    result = swapdeck(
        "train", "-w", ws, "-m", model, "--steps", steps, "--save-every", 3,
        "--preview-every", 3, "--log-every", 1, "--precision", "fp32", "--json", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return _events(result.output)


def test_a_throwaway_family_trains_saves_resumes_and_previews(
    throwaway_family: registry.FamilyInfo, facesets_ws: Path
) -> None:
    first = _train(facesets_ws, "t", 6, "--preset", "throwaway", "-a", "a", "--set", "width=3")
    started = next(e for e in first if e["type"] == "started")
    assert started["detail"]["family"] == "throwaway"
    assert started["detail"]["faces"] > 0
    folder = Workspace(facesets_ws).model_dir("t")
    toml = (folder / "model.toml").read_text()
    assert 'family = "throwaway"' in toml and "width = 3" in toml
    assert (folder / "previews" / "latest.png").is_file()
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all("loss_recon" in r for r in records)
    with safe_open(str(folder / "checkpoint.safetensors"), "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert any(k.startswith("optim.") for k in keys)  # the main optimizer
    assert any(k.startswith("optim_head.") for k in keys)  # and the second one
    assert "head" in json.loads(meta["optimizers"])

    # Resumed: from step 6, to the same weights as one uninterrupted run of 9 steps.
    again = _train(facesets_ws, "t", 9)
    assert next(e for e in again if e["type"] == "started")["detail"]["start_step"] == 6
    resumed = next(e for e in again if e["type"] == "finished")["result"]
    straight = _train(facesets_ws, "u", 9, "--preset", "throwaway", "-a", "a", "--set", "width=3")
    whole = next(e for e in straight if e["type"] == "finished")["result"]
    assert resumed["steps"] == whole["steps"] == 9
    assert resumed["loss_recon"] == whole["loss_recon"]


def test_a_family_option_it_lacks_is_refused_in_one_line(
    throwaway_family: registry.FamilyInfo, facesets_ws: Path
) -> None:
    result = swapdeck(
        "train", "-w", facesets_ws, "-m", "t", "--preset", "throwaway", "-a", "a",
        "--set", "bottleneck=3", "--steps", 1,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "throwaway models have no option bottleneck" in result.output
    assert "Traceback" not in result.output
    assert not Workspace(facesets_ws).model_dir("t").exists()
