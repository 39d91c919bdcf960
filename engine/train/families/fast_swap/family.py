"""Training Fast Face-swap: one transformation network that draws any face as person B.

Per step: draw input faces from the pool of every input faceset (the Trainer's
seeded generator, on the device), flip and colour-jitter them on the device, run
the network, and score its output against the input (content: VGG-19 relu4_2;
light: the lighting network's features) and against the B photos whose head pose
is nearest the input's (style: 3x3 patches of relu3_1 and relu4_1), plus total
variation. The B photos' VGG features are computed once, when the data loads.
The lighting network trains on synthetically relit faces before the first step;
it is part of the checkpoint, so a resumed run never retrains it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch import nn

from engine.errors import BadInputError, SwapdeckError
from engine.train.augment import Augmenter, AugmentSpec
from engine.train.data import FaceData, faceset_geometry, load_faces
from engine.train.families.fast_swap import FAMILY
from engine.train.families.fast_swap.light import LightNet, light_loss, train_light
from engine.train.families.fast_swap.losses import (
    content_loss,
    nearest_poses,
    patch_style_loss,
    tv_loss,
)
from engine.train.families.fast_swap.network import TransformNet
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.train.preview import save_png
from engine.train.registry import CropGeometry, ModelSettingsBase
from engine.train.vgg import RELU_ENDS, Vgg19, find_weights, load_vgg19
from engine.workspace import Workspace

# VGG-19 taps, in order: the style layers, then the content layer (the paper's choice).
VGG_TAPS = (RELU_ENDS["relu3_1"], RELU_ENDS["relu4_1"], RELU_ENDS["relu4_2"])
_PURPOSE = "training a fast-swap model (its content and style losses)"
# Inputs are flipped by the family (so their yaw can be mirrored), never warped: the
# content target is the input itself, so a warp would only teach the network to warp.
_AUGMENT = AugmentSpec(flip=0.0, warp=0.0)
_FEATURE_CHUNK = 16
_PREVIEW_ROWS = 4


def check_shape(size: int, scales: int) -> None:
    """Refuse (ValueError) a size the branches cannot halve down to at least 4 px."""
    coarsest = size >> (scales - 1)
    if size % (1 << (scales - 1)) or coarsest < 4:
        raise ValueError(
            f"{scales} branches cannot work at {size} px: each halves the size, and the "
            f"coarsest must be a whole number of at least 4 px"
        )


class FastSwapNetworks(nn.Module):
    """Everything a fast-swap checkpoint holds: the transformation network, the lighting
    network its light loss uses, and whether that one has been trained yet.

    For convert, `forward(x, "b")` is the swap: (face, no mask).
    """

    def __init__(self, size: int, scales: int, width: int) -> None:
        super().__init__()
        self.transform = TransformNet(size, scales, width)
        self.light = LightNet()
        self.light.requires_grad_(False)
        self.register_buffer("light_ready", torch.zeros(1, dtype=torch.uint8))
        self.size = size
        self.learns_mask = False

    def train(self, mode: bool = True) -> FastSwapNetworks:
        super().train(mode)
        self.light.eval()  # a fixed loss network once trained, its batch norm frozen
        return self

    def forward(self, x: torch.Tensor, identity: str = "b") -> tuple[torch.Tensor, None]:
        if identity != "b":
            raise ValueError("a fast-swap network only draws person B (direction a-to-b)")
        return self.transform(x), None


def networks_of(settings: Any) -> FastSwapNetworks:
    return FastSwapNetworks(settings.size, settings.scales, settings.width)


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts) if len(parts) > 1 else parts[0]


class FastSwapFamily(Family):
    info: ClassVar = FAMILY

    def __init__(self, settings: ModelSettingsBase, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        s: Any = settings
        self.batch_size: int = s.batch_size
        self.augment = Augmenter(_AUGMENT, s.size)

    @classmethod
    def check(cls, settings: ModelSettingsBase) -> None:
        s: Any = settings
        check_shape(s.size, s.scales)

    @classmethod
    def inference_module(cls, settings: ModelSettingsBase) -> nn.Module:
        return networks_of(settings)

    # ---- data ---------------------------------------------------------------------------

    def _input_names(self) -> tuple[list[str], bool]:
        """The input facesets, and whether the user named them (else: all but B's)."""
        s: Any = self.settings
        given = bool(s.inputs)
        names = (
            list(s.inputs)
            if given
            else [n for n in self.workspace.faceset_names() if n != s.faceset_b]
        )
        if s.faceset_a:  # first: its crop geometry is the one convert cuts A's faces with
            names = [s.faceset_a, *(n for n in names if n != s.faceset_a)]
        if s.faceset_b in names:
            raise BadInputError(
                f"faceset {s.faceset_b} is person B's: it cannot also be an input",
                "give --inputs with faces of other people",
            )
        return names, given

    def _load_inputs(self, b_geometry: CropGeometry | None) -> list[FaceData]:
        s: Any = self.settings
        names, given = self._input_names()
        loaded: list[FaceData] = []
        self.skipped: list[str] = []
        self.geometries: dict[str, CropGeometry | None] = {s.faceset_b: b_geometry}
        for name in names:
            named = given or name == s.faceset_a
            geometry = self.geometries[name] = faceset_geometry(self.workspace, name)
            if b_geometry and geometry and abs(geometry.coverage - b_geometry.coverage) > 1e-6:
                if named:
                    raise BadInputError(
                        f"faceset {name} was cut at coverage {geometry.coverage}, "
                        f"B's ({s.faceset_b}) at {b_geometry.coverage}",
                        "extract both with the same --coverage",
                    )
                self.skipped.append(name)
                continue
            try:
                loaded.append(load_faces(self.workspace, name, s.size))
            except SwapdeckError:
                if named:
                    raise
                self.skipped.append(name)  # too few faces, or too small: not an input
        if not loaded:
            raise BadInputError(
                f"fast-swap learns from faces of other people, and this workspace has no "
                f"usable faceset but B's ({s.faceset_b})",
                "extract another person's faces into it (25 or more), or give --inputs FACESET",
            )
        self.input_names = [d.name for d in loaded]
        return loaded

    def load_data(self, device: torch.device) -> dict[str, Any]:
        s: Any = self.settings
        weights = find_weights(s.vgg_weights, _PURPOSE)  # before anything slow
        b_geometry = faceset_geometry(self.workspace, s.faceset_b)
        data_b = load_faces(self.workspace, s.faceset_b, s.size)
        inputs = self._load_inputs(b_geometry)
        self.prepare(inputs, data_b, load_vgg19(weights, device, VGG_TAPS), device)
        return {
            "faces_b": len(data_b),
            "faces_inputs": len(self.faces),
            "inputs": ",".join(self.input_names),
            "style_photos": len(self.photo_poses),
            **({"skipped": ",".join(self.skipped)} if self.skipped else {}),
        }

    def prepare(
        self, inputs: list[FaceData], data_b: FaceData, vgg: Vgg19, device: torch.device
    ) -> None:
        """Hold the loaded faces on `device` and cache the B photos' VGG features (`vgg`
        taps relu3_1, relu4_1, relu4_2). load_data's second half; benchmarks call it
        with synthetic faces."""
        self.faces = _cat([d.faces for d in inputs]).to(device)
        self.masks = _cat([d.masks for d in inputs]).to(device)
        self.poses = _cat([d.poses for d in inputs])[:, :2].to(device)
        if self.batch_size > len(self.faces):
            raise BadInputError(
                f"batch size {self.batch_size} is larger than the {len(self.faces)} input faces",
                f"use --batch-size {len(self.faces)} or less, or add faces",
            )
        # Held-out faces of each input faceset in turn, for the preview.
        per = max(1, _PREVIEW_ROWS // len(inputs))
        self.held = _cat([d.held_faces[:per] for d in inputs])[:_PREVIEW_ROWS]
        self.held_poses = _cat([d.held_poses[:per, :2] for d in inputs])[:_PREVIEW_ROWS]
        self.b_faces = data_b.faces
        self.vgg = vgg.to(device)
        self._cache_style(data_b, device)

    @torch.no_grad()
    def _cache_style(self, data_b: FaceData, device: torch.device) -> None:
        """VGG features of up to `style_photos` B photos, spread over their yaw."""
        s: Any = self.settings
        order = torch.argsort(data_b.poses[:, 0])
        keep = min(s.style_photos, len(order))
        picked = order[torch.linspace(0, len(order) - 1, keep).round().long().unique()]
        self.photo_index = picked  # rows of b_faces, for the preview
        self.photo_poses = data_b.poses[picked, :2].to(device)
        # Half precision keeps hundreds of photos' feature maps in memory; matching
        # and the loss compute in the step's precision anyway.
        store = torch.float16 if device.type == "cuda" else torch.bfloat16
        style3, style4 = [], []
        for chunk in picked.split(_FEATURE_CHUNK):
            x = data_b.faces[chunk].to(device).float().div_(255)
            f3, f4, _ = self.vgg(x)
            style3.append(f3.to(store))
            style4.append(f4.to(store))
        self.style3, self.style4 = torch.cat(style3), torch.cat(style4)

    def geometry(self) -> dict[str, CropGeometry]:
        s: Any = self.settings
        # Read when the data loaded: side a is the first input's (A's, when given).
        found = {"a": self.geometries[self.input_names[0]], "b": self.geometries[s.faceset_b]}
        return {side: g for side, g in found.items() if g is not None}

    @property
    def examples_per_step(self) -> int:
        return self.batch_size

    # ---- networks -----------------------------------------------------------------------

    def build(self) -> nn.Module:
        return networks_of(self.settings)

    def forward_module(self, networks: nn.Module) -> nn.Module:
        return networks.transform  # type: ignore[return-value]

    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        s: Any = self.settings
        # Feed-forward style transfer trains with plain Adam betas (Johnson et al.).
        return {"main": make_optimizer(networks.transform, s.lr, betas=(0.9, 0.999))}

    # ---- one step -----------------------------------------------------------------------

    def _train_light(self, device: torch.device) -> None:
        """Train the lighting network once, on every input and B face, before step 1."""
        s: Any = self.settings
        nets: Any = self.networks
        generator = torch.Generator(device=device).manual_seed(s.seed * 7919 + 17)
        faces = torch.cat([self.faces, self.b_faces.to(device)])
        nets.light.requires_grad_(True)
        with torch.autocast(device.type, enabled=False):
            train_light(nets.light, faces, s.light_steps, generator)
        nets.light.requires_grad_(False)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for tensor in nets.light.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)  # every rank, one light network
        nets.light_ready.fill_(1)
        nets.light.eval()

    def _batch(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented inputs (B,3,S,S) in [0,1] and their (yaw, pitch), yaw mirrored with
        the face when it is flipped."""
        idx = torch.randint(
            len(self.faces), (self.batch_size,), generator=ctx.generator, device=ctx.device
        )
        flip = torch.rand(self.batch_size, generator=ctx.generator, device=ctx.device) < 0.5
        faces = torch.where(flip[:, None, None, None], self.faces[idx].flip(-1), self.faces[idx])
        masks = torch.where(flip[:, None, None, None], self.masks[idx].flip(-1), self.masks[idx])
        poses = self.poses[idx].clone()
        poses[:, 0] = torch.where(flip, -poses[:, 0], poses[:, 0])
        _, inputs, _ = self.augment(faces, masks, ctx.generator)
        return inputs, poses

    def train_step(self, ctx: StepContext) -> StepResult:
        s: Any = self.settings
        nets: Any = self.networks
        if not int(nets.light_ready[0]):
            self._train_light(ctx.device)
        x, poses = self._batch(ctx)
        if ctx.hook is not None:
            batch = {"inputs": x}
            ctx.hook(ctx.step, batch)
            x = batch["inputs"]
        nearest = nearest_poses(poses, self.photo_poses, s.n_best)
        with ctx.autocast():
            y = ctx.forward(x)
            f3, f4, f_content = self.vgg(y)
            with torch.no_grad():
                target = self.vgg(x)[2]
            content = content_loss(f_content, target)
            style3, _ = patch_style_loss(f3, self.style3[nearest].to(f3.dtype))
            style4, _ = patch_style_loss(f4, self.style4[nearest].to(f4.dtype))
            style = style3 + style4
            light = light_loss(nets.light, y, x)
            tv = tv_loss(y)
            total = (
                s.content_weight * content
                + s.style_weight * style
                + s.light_weight * light
                + s.tv_weight * tv
            )
        ctx.optimize(total, self.optims["main"], nets.transform.parameters())
        parts = {"content": content, "style": style, "light": light, "tv": tv}
        return StepResult(
            float(total.detach()), {f"loss_{k}": float(v.detach()) for k, v in parts.items()}
        )

    # ---- preview ------------------------------------------------------------------------

    @torch.no_grad()
    def preview(self, networks: nn.Module, path: Path) -> Path:
        """Rows: held-out input faces. Columns: input | output | the B photo nearest in pose."""
        nets: Any = networks
        device = self.photo_poses.device
        was_training = nets.training
        nets.eval()
        try:
            x = self.held.to(device).float().div_(255)
            y = nets.transform(x).float().clamp(0, 1)
        finally:
            nets.train(was_training)
        nearest = nearest_poses(self.held_poses.to(device), self.photo_poses, 1)[:, 0]
        photos = self.b_faces[self.photo_index[nearest.cpu()]].float().div(255).to(device)
        rows = [torch.cat([x[i], y[i], photos[i]], dim=2) for i in range(len(x))]
        grid = torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy()
        rgb = (grid * 255 + 0.5).astype(np.uint8)
        if x.shape[-1] < 128:  # small faces shown twice as large
            rgb = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        return save_png(rgb, path)
