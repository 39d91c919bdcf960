"""A FOMM model, loaded to animate portraits (reenact, score)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.errors import BadInputError, NotFoundError
from engine.train import dist
from engine.train.checkpoint import load_checkpoint
from engine.train.families.fomm.networks import FommNetworks, build_networks
from engine.train.registry import ModelSettingsBase
from engine.train.store import ModelPaths, open_model
from engine.workspace import Workspace

FAMILY = "fomm"
# Frames per forward pass: the generator at 256 px holds ~100 MB of activations a frame.
BATCH = 16


@dataclass
class Reenactor:
    name: str
    settings: ModelSettingsBase
    networks: FommNetworks
    step: int
    device: torch.device
    batch: int = BATCH

    @property
    def size(self) -> int:
        settings: Any = self.settings
        return int(settings.size)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        # Half precision on CUDA only: the keypoint and motion maths stay fp32 inside.
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda")

    def _tensor(self, frames: np.ndarray) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1:] != (self.size, self.size, 3):
            raise ValueError(
                f"frames of shape {frames.shape}, model {self.name} takes (N, {self.size}, "
                f"{self.size}, 3)"
            )
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(255)

    def _chunks(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.batch):
            yield slice(start, min(n, start + self.batch))

    @torch.inference_mode()
    def keypoints(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """(N, S, S, 3) uint8 RGB → {"value": (N, K, 2), "jacobian": (N, K, 2, 2)}, fp32 on
        the model's device, coordinates in [-1, 1]."""
        parts: list[dict[str, torch.Tensor]] = []
        for chunk in self._chunks(len(frames)):
            with self._autocast():
                parts.append(self.networks.kp_detector(self._tensor(frames[chunk])))
        return {key: torch.cat([p[key].float() for p in parts]) for key in ("value", "jacobian")}

    @torch.inference_mode()
    def animate(
        self,
        source: np.ndarray,
        kp_source: dict[str, torch.Tensor],
        kp_driving: dict[str, torch.Tensor],
    ) -> np.ndarray:
        """The (S, S, 3) uint8 source moved to each of the N driving keypoint sets (see
        motion.relative_motion) → (N, S, S, 3) uint8."""
        x = self._tensor(source[None])
        src = {k: v.to(self.device).float() for k, v in kp_source.items()}
        drv = {k: v.to(self.device).float() for k, v in kp_driving.items()}
        n = len(drv["value"])
        out = np.empty((n, self.size, self.size, 3), dtype=np.uint8)
        for chunk in self._chunks(n):
            count = chunk.stop - chunk.start
            with self._autocast():
                result = self.networks.generator(
                    x.expand(count, -1, -1, -1),
                    kp_source={k: v.expand(count, *v.shape[1:]) for k, v in src.items()},
                    kp_driving={k: v[chunk] for k, v in drv.items()},
                )
            frames = result["prediction"].float().clamp(0, 1).mul(255).add(0.5).byte()
            out[chunk] = frames.permute(0, 2, 3, 1).cpu().numpy()
        return out


def load_reenactor(workspace: Workspace, name: str, device: str = "auto") -> Reenactor:
    """Load fomm model `name` for reenactment; refuses a model that does not exist, is not
    a FOMM model, or has no checkpoint (never trained, never imported)."""
    paths = ModelPaths(workspace.model_dir(name))
    if not paths.toml.exists():
        raise NotFoundError(
            f"no model {name!r} in {workspace.models_dir}",
            "import the authors' weights (swapdeck import fomm CHECKPOINT -w WS -m NAME) "
            "or train one (swapdeck train --family fomm)",
        )
    settings, _, _ = open_model(workspace, name, {})
    if settings.family != FAMILY:
        raise BadInputError(
            f"model {name} is a {settings.family} model, not a fomm (reenactment) model",
            "reenact with a fomm model: swapdeck import fomm CHECKPOINT -w WS -m NAME",
        )
    if not paths.checkpoint.exists():
        raise BadInputError(
            f"model {name} has no weights yet (no checkpoint)",
            f"train it first (swapdeck train -w {workspace.root} -m {name}) or import weights",
        )
    torch_device = dist.resolve_device(device, dist.DistInfo())
    # Built without initialising 59 M weights that the checkpoint overwrites at once.
    with torch.device("meta"):
        networks = build_networks(settings)
    networks.to_empty(device=torch_device)
    info, _ = load_checkpoint(paths.checkpoint, networks, None)
    networks.eval()
    return Reenactor(
        name=name,
        settings=settings,
        networks=networks,
        step=int(info.get("step", 0)),
        device=torch_device,
    )
