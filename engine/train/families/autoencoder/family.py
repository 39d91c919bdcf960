"""Training the autoencoder: two facesets, one shared encoder, a decoder per person.

Per step: draw a batch of A and of B (the Trainer's seeded generator, on the
device), augment on the device, run the shared encoder once over both, compute
the masked SSIM + pixel + eye/mouth (+ mask) loss, step Adam.

Masked training: faces with an imported label, and every face when the option
`occlusion_model` names one, carry a visible-mask channel; the loss leaves out
what covers the face (engine/train/losses.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from engine.errors import BadInputError
from engine.train.augment import Augmenter, AugmentSpec
from engine.train.data import FaceData, faceset_geometry, load_faces
from engine.train.families.autoencoder import FAMILY
from engine.train.families.occlusion.inference import OcclusionModel, load_occlusion
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.train.losses import LossSpec, SwapLoss
from engine.train.models import build_model
from engine.train.models.base import ArchSpec, SwapModel
from engine.train.preview import render_preview
from engine.train.registry import CropGeometry, ModelSettingsBase
from engine.workspace import Workspace, check_name

_ARCH_KEYS = ("preset", "size", "layout", "enc_dims", "dec_dims", "bottleneck", "learn_mask")


def arch_of(settings: Any) -> ArchSpec:
    """The architecture an autoencoder model's settings describe."""
    return ArchSpec.from_dict({k: getattr(settings, k) for k in _ARCH_KEYS})


class _Pair(nn.Module):
    """forward(xa, xb) -> both reconstructions, so DDP sees one forward per step."""

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor):
        return self.model.forward_pair(xa, xb)


def facesets_geometry(workspace: Workspace, settings: Any) -> dict[str, CropGeometry]:
    """How each side's faceset cut its faces, for the sides whose faceset still says."""
    found = {
        side: faceset_geometry(workspace, name)
        for side, name in (("a", settings.faceset_a), ("b", settings.faceset_b))
    }
    return {side: g for side, g in found.items() if g is not None}


def _occlusion_name(settings: Any) -> str:
    """The `occlusion_model` option, "" for none; refuses one that is not a plain name."""
    name: str = getattr(settings, "occlusion_model", "")
    return check_name(name, "occlusion_model") if name else ""


class AutoencoderFamily(Family):
    info: ClassVar = FAMILY

    def __init__(self, settings: ModelSettingsBase, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        self.arch = arch_of(settings)
        s: Any = settings
        self.batch_size: int = s.batch_size
        self.augment = Augmenter(AugmentSpec(), self.arch.size)
        self.loss = SwapLoss(LossSpec(kind=s.loss, eye_mouth_weight=s.eye_mouth_weight))

    @classmethod
    def check(cls, settings: ModelSettingsBase) -> None:
        arch_of(settings)  # the architecture's own checks (e.g. liae needs an even code)
        _occlusion_name(settings)

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, device: torch.device) -> dict[str, Any]:
        s: Any = self.settings
        if s.faceset_a == s.faceset_b:
            raise BadInputError(
                f"-a and -b are the same faceset ({s.faceset_a})", "train on two different people"
            )
        size = self.arch.size
        occlusion = self._occlusion(device)
        self.data_a, self.data_b = (
            load_faces(self.workspace, name, size, visibility=True, occlusion=occlusion).to(device)
            for name in (s.faceset_a, s.faceset_b)
        )
        for data in (self.data_a, self.data_b):
            if self.batch_size > len(data):
                raise BadInputError(
                    f"batch size {self.batch_size} is larger than faceset {data.name} "
                    f"({len(data)} training faces)",
                    f"use --batch-size {len(data)} or less, or add faces",
                )
        return {"faces_a": len(self.data_a), "faces_b": len(self.data_b)}

    def _occlusion(self, device: torch.device) -> OcclusionModel | None:
        """The occlusion model of masked training, loaded; refuses a missing, untrained or
        other-family one (before anything is written)."""
        name = _occlusion_name(self.settings)
        if not name:
            return None
        return load_occlusion(self.workspace, name, str(device))

    def geometry(self) -> dict[str, CropGeometry]:
        return facesets_geometry(self.workspace, self.settings)

    @property
    def examples_per_step(self) -> int:
        return 2 * self.batch_size

    # ---- networks -----------------------------------------------------------------------

    def build(self) -> nn.Module:
        return build_model(self.arch)

    @classmethod
    def inference_module(cls, settings: ModelSettingsBase) -> nn.Module:
        return build_model(arch_of(settings))

    def forward_module(self, networks: nn.Module) -> nn.Module:
        return _Pair(networks)  # type: ignore[arg-type]

    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        s: Any = self.settings
        return {"main": make_optimizer(networks, s.lr)}

    # ---- one step -----------------------------------------------------------------------

    def _batch(
        self, data: FaceData, ctx: StepContext
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(
            len(data), (self.batch_size,), generator=ctx.generator, device=ctx.device
        )
        return self.augment(data.faces[idx], data.masks[idx], ctx.generator)

    def train_step(self, ctx: StepContext) -> StepResult:
        in_a, tgt_a, m_a = self._batch(self.data_a, ctx)
        in_b, tgt_b, m_b = self._batch(self.data_b, ctx)
        if ctx.hook is not None:
            batch = {"in_a": in_a, "in_b": in_b, "tgt_a": tgt_a, "tgt_b": tgt_b}
            ctx.hook(ctx.step, batch)
            in_a, in_b = batch["in_a"], batch["in_b"]
        if ctx.device.type == "cuda":
            in_a = in_a.contiguous(memory_format=torch.channels_last)
            in_b = in_b.contiguous(memory_format=torch.channels_last)
        with ctx.autocast():
            ya, ma, yb, mb = ctx.forward(in_a, in_b)
            loss_a, parts_a = self.loss(ya, tgt_a, m_a, ma)
            loss_b, _parts_b = self.loss(yb, tgt_b, m_b, mb)
            total = loss_a + loss_b
        ctx.optimize(total, self.optims["main"], self.networks.parameters())
        losses = {"loss_a": float(loss_a.detach()), "loss_b": float(loss_b.detach())}
        losses.update({f"a_{k}": float(v) for k, v in parts_a.items()})
        return StepResult(float(total.detach()), losses)

    # ---- preview ------------------------------------------------------------------------

    def preview(self, networks: nn.Module, path: Path) -> Path:
        return render_preview(networks, self.data_a.held_faces, self.data_b.held_faces, path)
