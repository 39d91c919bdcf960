"""Training augmentation on the training device: affine, flip, colour and random warp.

The autoencoder-swap trick: the network sees a randomly *warped* face and must
reproduce the same face *unwarped*, so it learns faces rather than copying pixels.
Inputs and targets therefore share the affine, flip and colour jitter; only the
inputs carry the warp. Everything is batched; all randomness comes from one
`torch.Generator`, so a saved generator state replays a run's augmentation exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab
from torch import Tensor

from engine.errors import BadInputError

# Columns of the per-sample uniform draw, one row per sample.
_ROT, _SCALE, _SHIFT_X, _SHIFT_Y, _FLIP, _L, _A, _B = range(8)
_N_UNIFORM = 8
# Warp offsets beyond this many standard deviations can fold the grid; clip them.
_WARP_CLIP_SIGMAS = 2.5


@dataclass(frozen=True)
class AugmentSpec:
    """How strongly to augment; all zeros means no augmentation at all."""

    rotation: float = 10.0  # degrees, uniform ±
    scale: float = 0.05  # ± fraction
    shift: float = 0.05  # ± fraction of size
    flip: float = 0.5  # probability of a horizontal flip
    warp: float = 0.06  # std of the random-warp displacement, fraction of size
    warp_grid: int = 5  # coarse control grid (warp_grid x warp_grid points)
    color_l: float = 0.15  # LAB lightness jitter, fraction of 100 (uniform ±)
    color_ab: float = 8.0  # LAB a/b channel shift (uniform ±)

    def __post_init__(self) -> None:
        for name in ("rotation", "scale", "shift", "warp", "color_l", "color_ab"):
            if getattr(self, name) < 0:
                raise BadInputError(f"augment {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.flip <= 1.0:
            raise BadInputError(f"augment flip is a probability in [0, 1], got {self.flip}")
        if self.scale >= 1.0:
            raise BadInputError(f"augment scale must be < 1, got {self.scale}")
        # The outer ring of control points is pinned to zero, so at least one must move.
        if self.warp_grid < 3:
            raise BadInputError(f"augment warp_grid must be >= 3, got {self.warp_grid}")

    @property
    def has_color(self) -> bool:
        return self.color_l > 0 or self.color_ab > 0


class Augmenter:
    """Batched augmentation of uint8 faces and masks on whatever device they live on."""

    def __init__(self, spec: AugmentSpec, size: int) -> None:
        self.spec = spec
        self.size = size

    def __call__(
        self, faces: Tensor, masks: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Augment one batch.

        faces: (N,3,S,S) uint8; masks: (N,C,S,S) uint8 0/255, C = 2 or 3 (0 = face
        hull, 1 = eyes+mouth, 2 = visible, for masked training); generator: the source
        of all randomness, ideally on the data's device. Returns float32 tensors in
        [0,1]: inputs (N,3,S,S) warped, targets (N,3,S,S) and target_masks (N,C,S,S)
        with the same affine, flip and colour but no warp.
        """
        self._check(faces, masks)
        # Sampling and colour maths want float32 even inside a bf16 training step.
        with torch.autocast(faces.device.type, enabled=False):
            uniform, noise = self._draw(faces.shape[0], generator, faces.device)
            images = to_unit(faces)
            if self.spec.has_color:
                # Colour is per pixel, so jittering before the resampling gives inputs
                # and targets the same colour at half the cost of converting both.
                images = self._jitter_color(images, uniform)
            grid = F.affine_grid(self._theta(uniform), list(faces.shape), align_corners=False)
            stacked = torch.cat([images, to_unit(masks)], dim=1)
            sampled = _sample(stacked, grid)
            targets, target_masks = sampled[:, :3], sampled[:, 3:]
            if self.spec.warp > 0:
                inputs = _sample(images, grid + self._warp_field(noise))
            else:
                inputs = targets.clone()
        return inputs, targets, target_masks

    def preview(self, faces: Tensor) -> Tensor:
        """The faces as float32 in [0,1] with no augmentation, for previews and eval."""
        return to_unit(faces)

    def _check(self, faces: Tensor, masks: Tensor) -> None:
        n, s = faces.shape[0], self.size
        if faces.shape != (n, 3, s, s):
            raise ValueError(f"faces must be (N,3,{s},{s}), got {tuple(faces.shape)}")
        if masks.shape not in ((n, 2, s, s), (n, 3, s, s)):
            raise ValueError(f"masks must be (N,2|3,{s},{s}), got {tuple(masks.shape)}")

    def _draw(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """All random numbers for a batch, drawn every call so the stream stays aligned."""
        gen_device = generator.device
        uniform = torch.rand(n, _N_UNIFORM, generator=generator, device=gen_device)
        inner = self.spec.warp_grid - 2
        noise = torch.randn(n, 2, inner, inner, generator=generator, device=gen_device)
        return uniform.to(device), noise.to(device)

    def _theta(self, uniform: Tensor) -> Tensor:
        """(N,2,3) sampling matrices: output coordinates -> input coordinates."""
        spec = self.spec
        signed = uniform * 2.0 - 1.0  # uniform in [-1, 1)
        angle = signed[:, _ROT] * math.radians(spec.rotation)
        inv_scale = 1.0 / (1.0 + signed[:, _SCALE] * spec.scale)
        # Normalised coordinates span 2, so a shift of `shift` x size is 2 x shift.
        shift_x = signed[:, _SHIFT_X] * (2.0 * spec.shift)
        shift_y = signed[:, _SHIFT_Y] * (2.0 * spec.shift)
        mirror = torch.where(uniform[:, _FLIP] < spec.flip, -1.0, 1.0)
        cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
        row_x = torch.stack([cos * mirror, -sin, shift_x], dim=1)
        row_y = torch.stack([sin * mirror, cos, shift_y], dim=1)
        return torch.stack([row_x, row_y], dim=1)

    def _warp_field(self, noise: Tensor) -> Tensor:
        """(N,S,S,2) smooth displacement, zero on the border so the face edge never tears."""
        std = 2.0 * self.spec.warp  # fraction of size -> normalised units
        limit = _WARP_CLIP_SIGMAS * std
        coarse = F.pad((noise * std).clamp(-limit, limit), (1, 1, 1, 1))
        field = F.interpolate(
            coarse, size=(self.size, self.size), mode="bicubic", align_corners=True
        )
        return field.permute(0, 2, 3, 1)

    def _jitter_color(self, images: Tensor, uniform: Tensor) -> Tensor:
        """Per-sample LAB shift: lightness by ±color_l x 100, a/b by ±color_ab."""
        signed = uniform[:, _L : _B + 1] * 2.0 - 1.0
        scale = signed.new_tensor(
            [self.spec.color_l * 100.0, self.spec.color_ab, self.spec.color_ab]
        )
        offsets = (signed * scale)[:, :, None, None]
        return lab_to_rgb(rgb_to_lab(images) + offsets, clip=True)


def to_unit(images: Tensor) -> Tensor:
    """uint8 0..255 -> float32 0..1 (float inputs are taken to be 0..1 already)."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def _sample(images: Tensor, grid: Tensor) -> Tensor:
    # "border" repeats the edge rather than pulling black into the frame.
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
