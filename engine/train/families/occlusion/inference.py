"""An occlusion model, loaded to mask faces (convert, masked training, contact sheets).

`occlusion_for` says which occlusion model covers a faceset: the one named, else
the most specific trained model whose training faces included that faceset (one
fine-tuned on it alone before a generic one), the most recently trained first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.errors import BadInputError, NotFoundError, SwapdeckError
from engine.train import dist
from engine.train.checkpoint import load_checkpoint
from engine.train.families.occlusion.network import MaskNet
from engine.train.registry import ModelSettingsBase
from engine.train.store import ModelPaths, load_settings, open_model
from engine.workspace import Workspace

FAMILY_NAME = "occlusion"
# Faces cut before model.toml kept their geometry: extract's default coverage.
_DEFAULT_COVERAGE = 0.75


@dataclass
class OcclusionModel:
    name: str
    settings: ModelSettingsBase
    net: MaskNet
    step: int
    device: torch.device

    @property
    def size(self) -> int:
        return self.net.size

    @property
    def coverage(self) -> float:
        """The coverage its training faces were cut at (convert cuts its crops the same way)."""
        found = next(iter(self.settings.geometry.values()), None)
        return found.coverage if found is not None else _DEFAULT_COVERAGE

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB aligned crops, any square size → (N, H, W) uint8 masks,
        255 where the pixel is the face itself, 0 where something covers it or no face is."""
        out = np.zeros(crops.shape[:3], np.uint8)
        size = self.size
        for start in range(0, len(crops), batch_size):
            chunk = crops[start : start + batch_size]
            if chunk.shape[1] != size:
                chunk = np.stack(
                    [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in chunk]
                )
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div_(255)
            prob = torch.sigmoid(self.net(x).float())[:, 0]
            masks = (prob * 255 + 0.5).byte().cpu().numpy()
            for i, mask in enumerate(masks):
                if mask.shape[0] != crops.shape[1]:
                    mask = cv2.resize(
                        mask, (crops.shape[2], crops.shape[1]), interpolation=cv2.INTER_LINEAR
                    )
                out[start + i] = mask
        return out


def build_net(settings: ModelSettingsBase) -> MaskNet:
    s = settings
    return MaskNet(int(s.size), int(s.width))  # type: ignore[attr-defined]


def trained_occlusion(
    workspace: Workspace, name: str, purpose: str = ""
) -> tuple[ModelSettingsBase, ModelPaths]:
    """Occlusion model `name`'s settings and files; refuses in one line one that is missing,
    of another family or not trained yet. `purpose` (" to start from") says what it is for."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        raise NotFoundError(
            f"no occlusion model {name!r}{purpose} in {workspace.models_dir}",
            f"train one: swapdeck train --family occlusion -w {workspace.root} -m {name}",
        )
    settings, _, _ = open_model(workspace, name, {})
    if settings.family != FAMILY_NAME:
        raise BadInputError(
            f"model {name} is a {settings.family} model, not an occlusion mask",
            "name a model trained with --family occlusion",
        )
    if not paths.checkpoint.exists():
        raise BadInputError(
            f"occlusion model {name} has not been trained yet (no checkpoint)",
            f"train it first: swapdeck train -w {workspace.root} -m {name}",
        )
    return settings, paths


def load_occlusion(workspace: Workspace, name: str, device: str = "auto") -> OcclusionModel:
    """Load occlusion model `name`; refuses one that is missing, of another family or untrained."""
    settings, paths = trained_occlusion(workspace, name)
    torch_device = dist.resolve_device(device, dist.DistInfo())
    net = build_net(settings)
    info, _ = load_checkpoint(paths.checkpoint, net, None)
    net.to(torch_device).eval()
    return OcclusionModel(name, settings, net, int(info.get("step", 0)), torch_device)


def trained_on(settings: ModelSettingsBase) -> tuple[str, ...]:
    """The facesets an occlusion model learned from (model.toml's geometry is keyed by them)."""
    return tuple(settings.geometry)


def occlusion_for(workspace: Workspace, faceset: str | None) -> str | None:
    """The trained occlusion model that covers `faceset`: fine-tuned on fewest facesets
    first, then the most recently trained; None when there is none."""
    if faceset is None or not workspace.models_dir.is_dir():
        return None
    found: list[tuple[int, float, str]] = []
    for folder in workspace.models_dir.iterdir():
        paths = ModelPaths(folder)
        if not (paths.toml.is_file() and paths.checkpoint.is_file()):
            continue
        try:
            settings = load_settings(paths.toml)
        except SwapdeckError:  # an unreadable model.toml is just not a candidate
            continue
        if settings.family != FAMILY_NAME or faceset not in trained_on(settings):
            continue
        found.append((len(trained_on(settings)), -_mtime(paths.checkpoint), folder.name))
    return min(found)[2] if found else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
