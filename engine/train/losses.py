"""The face-swap reconstruction loss: SSIM + L1/MSE on the masked face, extra weight on
eyes and mouth, and a mask term for models that predict one.

Masked training (DeepFaceLab's): where a third mask channel says what is *visible*
(0 where a hand or a microphone covers the face), covered pixels weigh nothing in
any term, and the face a learned mask should draw is the hull minus the cover, so
the model neither learns occluders as part of the face nor masks them in.

Computed in float32 whatever the caller's autocast: SSIM's moments and small
per-pixel errors lose too much in bfloat16.

SSIM is kornia's (`kornia.metrics.ssim`: Gaussian window 11, sigma 1.5, reflect
padding, c1 = 0.01², c2 = 0.03²) with its five local moments blurred in two
stacked kornia filter calls instead of ten: under autograd that halves the loss
step on CPU, and a test holds the map equal to kornia's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.filters import filter2d_separable, get_gaussian_kernel1d
from torch import Tensor, nn

from engine.errors import BadInputError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1, _C2 = 0.01**2, 0.03**2  # kornia's constants for images in [0, 1]
# Guards the region normalisation; a region of (almost) no area contributes ~0.
_AREA_EPS = 1e-6
_KINDS = ("l1", "mse")


@dataclass(frozen=True)
class LossSpec:
    """Weights of the loss terms; see `SwapLoss` for how they combine."""

    kind: str = "l1"  # "l1" | "mse" for the pixel term
    ssim_weight: float = 1.0
    pixel_weight: float = 1.0
    eye_mouth_weight: float = 2.0  # extra weight on the eye/mouth region (masks channel 1)
    background_weight: float = 0.1  # weight of pixels outside the face mask
    mask_weight: float = 1.0  # for models that predict a mask

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise BadInputError(f"loss kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        for name in ("ssim_weight", "pixel_weight", "eye_mouth_weight", "mask_weight"):
            if getattr(self, name) < 0:
                raise BadInputError(f"loss {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.background_weight <= 1.0:
            raise BadInputError(
                f"loss background_weight must be in [0, 1], got {self.background_weight}"
            )


class SwapLoss(nn.Module):
    """total = ssim_w·(1 − SSIM(pred·w, target·w)) + pixel_w·mean(w·err)
    + eye_mouth_w·(err averaged over the eye/mouth region) + mask_w·MSE(pred_mask, face mask),
    with w = (bg + (1 − bg)·hull)·visible, err = |pred − target| (or its square), the
    face mask hull·visible and the eye/mouth region ·visible too (visible = 1 without a
    third mask channel)."""

    def __init__(self, spec: LossSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(
        self, pred: Tensor, target: Tensor, masks: Tensor, pred_mask: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """pred/target (N,3,S,S) in [0,1]; masks (N,2,S,S) or (N,3,S,S) in [0,1] (0 face
        hull, 1 eyes+mouth, 2 visible: 0 where something covers the face); pred_mask
        (N,1,S,S) or None. Returns (total, parts): parts holds detached 0-d tensors
        "ssim", "pixel", "eye_mouth", and "mask" when pred_mask is given.
        """
        spec = self.spec
        with torch.autocast(pred.device.type, enabled=False):
            pred, target, masks = pred.float(), target.float(), masks.float()
            face, eye_mouth = masks[:, 0:1], masks[:, 1:2]
            weight = spec.background_weight + (1.0 - spec.background_weight) * face
            if masks.shape[1] > 2:  # masked training: covered pixels count zero
                visible = masks[:, 2:3]
                face, eye_mouth, weight = face * visible, eye_mouth * visible, weight * visible
            err = self._pixel_error(pred, target)
            terms = {
                "ssim": _ssim_term(pred * weight, target * weight),
                "pixel": (err * weight).mean(),
                "eye_mouth": _region_mean(err, eye_mouth),
            }
            total = (
                spec.ssim_weight * terms["ssim"]
                + spec.pixel_weight * terms["pixel"]
                + spec.eye_mouth_weight * terms["eye_mouth"]
            )
            if pred_mask is not None:
                terms["mask"] = torch.mean((pred_mask.float() - face) ** 2)
                total = total + spec.mask_weight * terms["mask"]
        return total, {name: value.detach() for name, value in terms.items()}

    def _pixel_error(self, pred: Tensor, target: Tensor) -> Tensor:
        """(N,1,S,S) per-pixel error, averaged over the colour channels."""
        diff = pred - target
        err = diff.abs() if self.spec.kind == "l1" else diff.square()
        return err.mean(dim=1, keepdim=True)


def _ssim_term(pred: Tensor, target: Tensor) -> Tensor:
    return 1.0 - ssim_map(pred, target).mean()


def ssim_map(pred: Tensor, target: Tensor) -> Tensor:
    """kornia.metrics.ssim(pred, target, 11, eps=0) for float32 images in [0, 1].

    The target is data, so its moments are blurred outside the graph; identical
    images score exactly 1.
    """
    kernel = get_gaussian_kernel1d(SSIM_WINDOW, SSIM_SIGMA, device=pred.device, dtype=pred.dtype)
    target = target.detach()
    target_moments = torch.cat([target, target * target], dim=1)
    pred_moments = torch.cat([pred, pred * pred, pred * target], dim=1)
    mu_t, sq_t = _blur(target_moments, kernel).chunk(2, dim=1)
    mu_p, sq_p, cross = _blur(pred_moments, kernel).chunk(3, dim=1)
    mu_pt, mu_p2, mu_t2 = mu_p * mu_t, mu_p * mu_p, mu_t * mu_t
    num = (2.0 * mu_pt + _C1) * (2.0 * (cross - mu_pt) + _C2)
    den = (mu_p2 + mu_t2 + _C1) * ((sq_p - mu_p2) + (sq_t - mu_t2) + _C2)
    return num / den


def _blur(moments: Tensor, kernel: Tensor) -> Tensor:
    # Channels-last lets oneDNN run the depthwise convolutions without re-blocking.
    moments = moments.contiguous(memory_format=torch.channels_last)
    return filter2d_separable(moments, kernel, kernel, border_type="reflect")


def _region_mean(err: Tensor, region: Tensor) -> Tensor:
    """Mean error inside a soft region, per sample, so a small region still counts fully."""
    area = region.sum(dim=(1, 2, 3))
    return ((err * region).sum(dim=(1, 2, 3)) / (area + _AREA_EPS)).mean()
