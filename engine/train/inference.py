"""A trained model, loaded for swapping faces (convert, score).

Any family whose models convert supplies the module through
`Family.inference_module(settings)`; this module knows no family's networks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.errors import BadInputError, NotFoundError, SwapdeckError
from engine.train import dist
from engine.train.checkpoint import load_checkpoint
from engine.train.registry import CropGeometry, ModelSettingsBase, get_family, implementation
from engine.train.store import (
    LEGACY_FAMILY,
    ModelPaths,
    create_model,
    open_model,
    with_geometry,
)
from engine.workspace import Workspace

# Models made before model.toml kept the crop geometry, whose facesets are gone too.
_DEFAULT_COVERAGE = 0.75


@dataclass
class TrainedModel:
    name: str
    settings: ModelSettingsBase
    model: nn.Module  # Family.inference_module's: size, learns_mask, forward(x, identity)
    step: int
    device: torch.device

    @property
    def size(self) -> int:
        return int(self.model.size)

    @property
    def learns_mask(self) -> bool:
        return bool(self.model.learns_mask)

    @property
    def both_ways(self) -> bool:
        """Whether it swaps b-to-a too, and rebuilds each side's own faces."""
        return get_family(self.settings.family).both_ways

    def check_direction(self, direction: str) -> None:
        """Refuse b-to-a for a model that swaps only into its target (a per-target network)."""
        if direction == "b-to-a" and not self.both_ways:
            target = getattr(self.settings, "faceset_b", None)
            raise BadInputError(
                f"model {self.name} is a {self.settings.family} model: it swaps faces only "
                f"into B ({target}), not b-to-a",
                "leave out --direction (a-to-b), or train a model for the other person",
            )

    def geometry(self, side: str) -> CropGeometry:
        """How side `side`'s training faces were cut (convert cuts its faces the same way)."""
        found = self.settings.geometry.get(side)
        return found or CropGeometry(coverage=_DEFAULT_COVERAGE, crop_size=self.size)

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


def _record_geometry(
    workspace: Workspace, settings: ModelSettingsBase, paths: ModelPaths
) -> ModelSettingsBase:
    """An older model learns its crop geometry from its facesets while they exist.

    Only autoencoders were made before model.toml kept the geometry.
    """
    from engine.train.families.autoencoder.family import facesets_geometry

    updated = with_geometry(settings, facesets_geometry(workspace, settings))
    if updated is not settings:
        with contextlib.suppress(OSError, SwapdeckError):  # read-only: use it all the same
            create_model(updated, paths)
    return updated


def load_trained(workspace: Workspace, name: str, device: str = "auto") -> TrainedModel:
    """Load model `name` for inference; refuses a model that does not exist or never trained."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        raise NotFoundError(
            f"no model {name!r} in {workspace.models_dir}",
            "train one first: swapdeck train -w WORKSPACE -m NAME -a FACESET -b FACESET",
        )
    settings, _, _ = open_model(workspace, name, {})
    if not get_family(settings.family).converts:
        raise BadInputError(
            f"model {name} is a {settings.family} model, which does not swap faces in footage",
            "convert with a model of a family that does (swapdeck train --help lists them)",
        )
    if not paths.checkpoint.exists():
        raise BadInputError(
            f"model {name} has not been trained yet (no checkpoint)",
            f"train it first: swapdeck train -w {workspace.root} -m {name}",
        )
    if settings.family == LEGACY_FAMILY and len(settings.geometry) < 2:
        settings = _record_geometry(workspace, settings, paths)
    torch_device = dist.resolve_device(device, dist.DistInfo())
    model = implementation(settings.family).inference_module(settings)
    info, _ = load_checkpoint(paths.checkpoint, model, None)
    model.to(torch_device).eval()
    return TrainedModel(
        name=name,
        settings=settings,
        model=model,
        step=int(info.get("step", 0)),
        device=torch_device,
    )
