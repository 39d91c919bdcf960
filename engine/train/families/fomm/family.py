"""Training FOMM on the user's own videos: pairs of frames of one shot.

Per step: draw `batch_size` (source, driving) pairs, each from one shot (the
Trainer's seeded generator, on the device), flip and colour-jitter each pair
alike, find keypoints in the source, the driving frame and a randomly warped
copy of the driving frame, generate the driving frame from the source, and
step one Adam over every network on the perceptual pyramid loss plus the two
equivariance losses (losses.py).

The crops are steady boxes per shot (engine.reenact.crop), not aligned faces,
so model.toml records no crop geometry: reenact cuts its frames the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import kornia
import numpy as np
import torch
from torch import nn

from engine.errors import BadInputError, NoFacesError
from engine.train.families.fomm import FAMILY
from engine.train.families.fomm.losses import RandomWarp, equivariance_losses, perceptual_loss
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.train.preview import save_png
from engine.train.registry import ModelSettingsBase
from engine.train.vgg import Vgg19, find_weights, load_vgg19
from engine.workspace import Workspace

# The authors' Adam betas for every FOMM network.
BETAS = (0.5, 0.999)
# Colour jitter as the authors' vox config (brightness, contrast, saturation, hue: +-0.1).
JITTER = 0.1
# Pairs shown in the preview; the last shot's last tenth (at least one frame more than
# that) is kept out of training for it.
PREVIEW_ROWS = 4
HELD_SHARE = 0.1
# Keypoint colours in the preview (RGB), cycled.
_KP_COLOURS = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
)  # fmt: skip


@dataclass
class Clips:
    """Every training frame in one tensor, and where each shot's frames lie in it."""

    frames: torch.Tensor  # (N, 3, S, S) uint8
    starts: torch.Tensor  # (C,) int64, first frame of each shot
    lengths: torch.Tensor  # (C,) int64, frames of each shot (2 or more)
    held: torch.Tensor  # (H, 3, S, S) uint8: frames of one shot kept out, for the preview

    @classmethod
    def from_arrays(cls, clips: list[np.ndarray], device: torch.device) -> Clips:
        """Stack the shots, keeping the last frames of the last shot out for the preview."""
        clips = [c for c in clips if len(c) >= 2]
        last = clips[-1]
        held_n = max(PREVIEW_ROWS + 1, round(len(last) * HELD_SHARE))
        if len(last) - held_n >= 2:
            train, held = [*clips[:-1], last[:-held_n]], last[-held_n:]
        elif len(clips) >= 2:
            train, held = clips[:-1], last
        else:  # one short shot: the preview shows frames it trained on
            train, held = clips, last
        lengths = torch.tensor([len(c) for c in train], dtype=torch.int64)
        starts = torch.cumsum(lengths, 0) - lengths

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()

        return cls(
            tensor(np.concatenate(train)).to(device),
            starts.to(device),
            lengths.to(device),
            tensor(held).to(device),
        )

    def __len__(self) -> int:
        return len(self.frames)

    def draw_pairs(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of `n` (source, driving) pairs, both of one shot.

        The source is any training frame (so a shot counts by its length), the driving
        frame any frame of the same shot.
        """
        device = self.frames.device
        source = torch.randint(len(self.frames), (n,), generator=generator, device=device)
        shot = torch.searchsorted(self.starts, source, right=True) - 1
        offset = torch.rand(n, generator=generator, device=device) * self.lengths[shot]
        driving = self.starts[shot] + offset.long().clamp_max(self.lengths[shot] - 1)
        return source, driving


class _Step(nn.Module):
    """One step's forward over the networks (so DDP sees a single forward)."""

    def __init__(self, networks: nn.Module) -> None:
        super().__init__()
        self.networks = networks

    def forward(
        self, source: torch.Tensor, driving: torch.Tensor, warped: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], ...]:
        kp = self.networks.kp_detector
        # Three calls, as the authors: each batch its own batch-norm statistics.
        kp_source, kp_driving, kp_warped = kp(source), kp(driving), kp(warped)
        generated = self.networks.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        return kp_source, kp_driving, kp_warped, generated


def video_paths(videos: str) -> list[Path]:
    """The video files the `videos` option names (a file or a folder), checked."""
    from engine.media.sources import expand_sources

    if not videos.strip():
        raise BadInputError(
            "fomm trains on videos: give --videos PATH",
            "a video of one talking face, or a folder of such videos",
        )
    path = Path(videos).expanduser()
    found = [item.path for item in expand_sources([path]) if item.kind == "video"]
    if not found:
        raise BadInputError(
            f"{path} holds no videos, only images" if path.is_dir() else f"{path} is not a video",
            "fomm learns motion from pairs of frames: give video files (.mp4, .mov, ...)",
        )
    return found


def _jitter(pair: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue (+-JITTER), one draw for both frames of a
    pair: `pair` is (2, B, 3, S, S) in [0, 1], as torchvision's ColorJitter in fixed order."""
    b = pair.shape[1]
    draw = torch.rand((4, b), generator=generator, device=pair.device) * 2 - 1
    factor = (1 + JITTER * draw[:3]).view(3, 1, b, 1, 1, 1)
    x = (pair * factor[0]).clamp(0, 1)
    mean = _grey(x).mean(dim=(2, 3, 4), keepdim=True)
    x = ((x - mean) * factor[1] + mean).clamp(0, 1)
    grey = _grey(x)
    x = (grey + (x - grey) * factor[2]).clamp(0, 1)
    hue = (JITTER * 2 * torch.pi * draw[3]).repeat(2)  # kornia's hue shift is in radians
    return kornia.enhance.adjust_hue(x.flatten(0, 1), hue).clamp(0, 1).view_as(pair)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of (..., 3, H, W), keeping a channel axis."""
    return 0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]


class FommFamily(Family):
    info: ClassVar = FAMILY

    def __init__(self, settings: ModelSettingsBase, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        s: Any = settings
        self.batch_size: int = s.batch_size
        self.size: int = s.size

    @classmethod
    def check(cls, settings: ModelSettingsBase) -> None:
        """The hourglasses halve their input per block and the generator per down block:
        sizes that do not divide evenly would not line up on the way back up."""
        s: Any = settings
        inner = s.size * s.scale_factor
        blocks = max(s.kp_num_blocks, s.dm_num_blocks)
        if inner != int(inner) or int(inner) % 2**blocks or s.size % round(1 / s.scale_factor):
            raise ValueError(
                f"size {s.size} at scale factor {s.scale_factor} gives {inner:g} px, "
                f"which {blocks} hourglass blocks cannot halve evenly"
            )
        if s.size % 2**s.num_down_blocks:
            raise ValueError(
                f"size {s.size} cannot be halved {s.num_down_blocks} times (num-down-blocks)"
            )

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, device: torch.device) -> dict[str, Any]:
        from engine.faces.finder import FaceFinder
        from engine.reenact.crop import training_clips

        s: Any = self.settings
        # The cheap refusals first (no videos, no VGG-19 file): no frame is read before.
        paths = video_paths(s.videos)
        weights = find_weights(s.vgg_weights)
        self.vgg: Vgg19 = load_vgg19(weights, device)
        if device.type == "cuda":
            self.vgg = self.vgg.to(memory_format=torch.channels_last)
        clips = training_clips(paths, self.size, FaceFinder(backend="auto"))
        clips = [c for c in clips if len(c) >= 2]
        if not clips:
            where = paths[0] if len(paths) == 1 else f"{len(paths)} videos in {s.videos}"
            raise NoFacesError(
                f"no shot of two frames or more with a face in {where}",
                "fomm learns from talking faces: give videos showing one face, front-on",
            )
        self.clips = Clips.from_arrays(clips, device)
        return {
            "videos": len(paths),
            "shots": len(clips),
            "frames": len(self.clips),  # those trained on
            "held_out": len(self.clips.held),  # those kept for the preview
            "vgg_weights": str(weights),
        }

    @property
    def examples_per_step(self) -> int:
        return self.batch_size

    # ---- networks -----------------------------------------------------------------------

    def build(self) -> nn.Module:
        from engine.train.families.fomm.networks import build_networks

        return build_networks(self.settings)

    def forward_module(self, networks: nn.Module) -> nn.Module:
        return _Step(networks)

    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        # One Adam over both networks: the losses need one backward through both, and
        # StepContext.optimize does one backward per optimizer.
        s: Any = self.settings
        return {"main": make_optimizer(networks, s.lr, BETAS)}

    # ---- one step -----------------------------------------------------------------------

    def _batch(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, driving) in [0, 1], each pair flipped and jittered alike."""
        src, drv = self.clips.draw_pairs(self.batch_size, ctx.generator)
        pair = torch.stack([self.clips.frames[src], self.clips.frames[drv]]).float() / 255
        flip = torch.rand(self.batch_size, generator=ctx.generator, device=ctx.device) < 0.5
        pair = torch.where(flip.view(1, -1, 1, 1, 1), pair.flip(-1), pair)
        pair = _jitter(pair, ctx.generator)
        return pair[0], pair[1]

    def train_step(self, ctx: StepContext) -> StepResult:
        s: Any = self.settings
        source, driving = self._batch(ctx)
        if ctx.hook is not None:
            batch = {"source": source, "driving": driving}
            ctx.hook(ctx.step, batch)
            source, driving = batch["source"], batch["driving"]
        warp = RandomWarp.draw(self.batch_size, ctx.generator, ctx.device)
        warped = warp.warp_frames(driving)
        if ctx.device.type == "cuda":
            source, driving, warped = (
                t.contiguous(memory_format=torch.channels_last) for t in (source, driving, warped)
            )
        with ctx.autocast():
            _kp_source, kp_driving, kp_warped, generated = ctx.forward(source, driving, warped)
            perceptual = perceptual_loss(
                self.vgg, generated["prediction"], driving, s.perceptual_weight
            )
        value, jacobian = equivariance_losses(kp_driving, kp_warped, warp)
        value, jacobian = s.equivariance_weight * value, s.equivariance_weight * jacobian
        total = perceptual + value + jacobian
        ctx.optimize(total, self.optims["main"], self.networks.parameters())
        losses = {
            "loss_perceptual": float(perceptual.detach()),
            "loss_equivariance_value": float(value.detach()),
            "loss_equivariance_jacobian": float(jacobian.detach()),
        }
        return StepResult(float(total.detach()), losses)

    # ---- preview ------------------------------------------------------------------------

    @torch.no_grad()
    def preview(self, networks: nn.Module, path: Path) -> Path:
        """Rows: held-out pairs. Columns: source | driving | prediction | occlusion map,
        with the keypoints drawn on the source and the driving frame. PNG, atomic."""
        held = self.clips.held
        rows = min(PREVIEW_ROWS, len(held) - 1) or 1
        pick = torch.linspace(1 if len(held) > 1 else 0, len(held) - 1, rows).round().long()
        driving = held[pick].float() / 255
        source = (held[:1].float() / 255).expand_as(driving).contiguous()
        was_training = networks.training
        networks.eval()
        try:
            kp_source = networks.kp_detector(source)
            kp_driving = networks.kp_detector(driving)
            out = networks.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        finally:
            networks.train(was_training)
        columns = [source, driving, out["prediction"].float().clamp(0, 1)]
        occlusion = out.get("occlusion_map")
        if occlusion is not None:
            occlusion = nn.functional.interpolate(
                occlusion.float(), size=driving.shape[-2:], mode="bilinear", align_corners=False
            )
            columns.append(occlusion.clamp(0, 1).expand(-1, 3, -1, -1))
        images = [_to_uint8(c) for c in columns]
        scale = max(1, 128 // self.size)
        images = [np.stack([_enlarge(f, scale) for f in col]) for col in images]
        for col, kp in ((images[0], kp_source), (images[1], kp_driving)):
            _draw_keypoints(col, kp["value"].float().cpu().numpy())
        grid = np.concatenate([np.concatenate(list(col), axis=0) for col in images], axis=1)
        return save_png(grid, path)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [0, 1] -> (B, S, S, 3) uint8."""
    frames = (x.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(frames)  # OpenCV draws only on C-ordered pictures


def _enlarge(frame: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return frame
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def _draw_keypoints(frames: np.ndarray, values: np.ndarray) -> None:
    """Dots at keypoints (B, K, 2) in [-1, 1] on (B, H, W, 3) frames, in place."""
    h, w = frames.shape[1:3]
    radius = max(2, w // 64)
    for frame, points in zip(frames, values, strict=True):
        for k, (x, y) in enumerate(points):
            centre = (round((x + 1) / 2 * (w - 1)), round((y + 1) / 2 * (h - 1)))
            cv2.circle(frame, centre, radius, _KP_COLOURS[k % len(_KP_COLOURS)], -1)
