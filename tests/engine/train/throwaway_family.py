"""A throwaway model family, declared in a few lines for the tests of the training seam.

Importable on its own (no test helpers), so a detached job's process can load it
through SWAPDECK_FAMILIES=throwaway_family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch import nn

from engine.train import registry
from engine.train.data import load_faces
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.workspace import atomic_write_bytes

INFO = registry.FamilyInfo(
    name="throwaway",
    help="a one-layer face blur, for testing the training seam",
    # Found by this name where the module is importable (a detached job's process).
    implementation="throwaway_family:Throwaway",
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


FAMILY = INFO  # what SWAPDECK_FAMILIES=throwaway_family registers in another process
