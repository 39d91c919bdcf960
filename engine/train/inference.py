"""A trained model, loaded for swapping faces (convert, score)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.config import ModelSettings
from engine.errors import BadInputError, NotFoundError
from engine.faceset import Faceset
from engine.train import dist
from engine.train.checkpoint import load_checkpoint
from engine.train.models import build_model
from engine.train.models.base import SwapModel
from engine.train.store import ModelPaths, arch_of, open_model
from engine.workspace import Workspace

_DEFAULT_COVERAGE = 0.75


@dataclass
class TrainedModel:
    name: str
    settings: ModelSettings
    model: SwapModel
    step: int
    coverage: float  # crops must be cut like the faces it learned from
    device: torch.device

    @property
    def size(self) -> int:
        return self.settings.size

    @property
    def learns_mask(self) -> bool:
        return self.model.learns_mask

    @torch.inference_mode()
    def swap(self, faces: np.ndarray, identity: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S, 3) uint8 RGB crops → (faces as identity, masks or None), uint8."""
        x = torch.from_numpy(np.ascontiguousarray(faces)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255)
        face, mask = self.model(x, identity)
        out = (face.float().clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
        if mask is None:
            return out, None
        return out, (mask.float().clamp(0, 1)[:, 0] * 255 + 0.5).byte().cpu().numpy()


def faceset_coverage(workspace: Workspace, name: str) -> float:
    """The coverage faceset `name` was extracted with (the default if it is gone)."""
    try:
        folder = workspace.existing_faceset_dir(name)
    except NotFoundError:
        return _DEFAULT_COVERAGE
    with Faceset.open(folder) as faceset:
        value = faceset.meta("coverage")
    return float(value) if value else _DEFAULT_COVERAGE


def load_trained(workspace: Workspace, name: str, device: str = "auto") -> TrainedModel:
    """Load model `name` for inference; refuses a model that does not exist or never trained."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        raise NotFoundError(
            f"no model {name!r} in {workspace.models_dir}",
            "train one first: swapdeck train -w WORKSPACE -m NAME -a FACESET -b FACESET",
        )
    settings, _, _ = open_model(workspace, name, {})
    if not paths.checkpoint.exists():
        raise BadInputError(
            f"model {name} has not been trained yet (no checkpoint)",
            f"train it first: swapdeck train -w {workspace.root} -m {name}",
        )
    torch_device = dist.resolve_device(device, dist.DistInfo())
    model = build_model(arch_of(settings))
    info, _ = load_checkpoint(paths.checkpoint, model, None)
    model.to(torch_device).eval()
    return TrainedModel(
        name=name,
        settings=settings,
        model=model,
        step=int(info.get("step", 0)),
        coverage=faceset_coverage(workspace, settings.faceset_a),
        device=torch_device,
    )
