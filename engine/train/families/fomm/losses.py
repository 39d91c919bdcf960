"""FOMM's training losses: the perceptual pyramid and the two equivariance losses.

Perceptual: the generated frame and the real driving frame, each at four scales
of an anti-aliased pyramid, compared by L1 on five VGG-19 feature maps (the
authors' reconstruction loss). Equivariance: the driving frame warped by a
random thin-plate-spline transform T must give keypoints that T carries back
onto the driving frame's own keypoints, and Jacobians that T's Jacobian maps
onto the driving frame's Jacobians. This is what makes the keypoints and their
local affine motions mean the same thing from frame to frame without labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_SCALES = (1.0, 0.5, 0.25, 0.125)
# The authors' train_params.transform_params.
SIGMA_AFFINE = 0.05
SIGMA_TPS = 0.005
POINTS_TPS = 5
# VGG-19 halves its input four times before relu5_1: a level smaller than this has no
# relu5_1 at all. At 256 px every level of the authors' pyramid passes (the smallest is
# 32 px); a 64 px model leaves out its 8 px level.
MIN_VGG_SIDE = 16


def downsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Gaussian blur then keep every (1/scale)-th pixel: the authors' anti-aliased resize.

    sigma = (1/scale - 1) / 2 with a 2*round(4 sigma)+1 kernel and zero padding, as
    their AntiAliasInterpolation2d; kornia supplies the blur.
    """
    if scale == 1:
        return x
    sigma = (1 / scale - 1) / 2
    size = 2 * round(4 * sigma) + 1
    blurred = kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), "constant")
    step = int(1 / scale)
    return blurred[:, :, ::step, ::step]


def pyramid(x: torch.Tensor, scales: Sequence[float] = PYRAMID_SCALES) -> list[torch.Tensor]:
    return [downsample(x, s) for s in scales]


def usable_scales(size: int, scales: Sequence[float] = PYRAMID_SCALES) -> tuple[float, ...]:
    """The pyramid levels of a `size`-px frame that VGG-19 can take down to relu5_1."""
    return tuple(s for s in scales if size * s >= MIN_VGG_SIDE)


def perceptual_loss(
    vgg: nn.Module,
    prediction: torch.Tensor,
    target: torch.Tensor,
    weight: float,
    scales: Sequence[float] = PYRAMID_SCALES,
) -> torch.Tensor:
    """Sum over the usable scales and VGG layers of weight * mean |VGG(pred) - VGG(target)|."""
    scales = usable_scales(min(prediction.shape[-2:]), scales)
    total = prediction.new_zeros((), dtype=torch.float32)
    for fake, real in zip(pyramid(prediction, scales), pyramid(target, scales), strict=True):
        fake_features = vgg(fake)
        with torch.no_grad():  # the target is data: no graph through VGG for it
            real_features = vgg(real)
        for a, b in zip(fake_features, real_features, strict=True):
            total = total + weight * (a.float() - b.float()).abs().mean()
    return total


def coordinate_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 2) pixel centres in [-1, 1], x then y (grid_sample's order, corners aligned)."""
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


@dataclass
class RandomWarp:
    """A random affine + thin-plate-spline warp of [-1, 1]² per batch item (the authors'
    Transform): `warp_coordinates` maps a point of the warped frame to where it is
    sampled in the original, so keypoints found in the warped frame map back with it."""

    theta: torch.Tensor  # (B, 2, 3) affine part, identity plus noise
    control_points: torch.Tensor  # (P*P, 2) the TPS control points, a grid over [-1, 1]²
    control_params: torch.Tensor  # (B, 1, P*P) their weights

    @classmethod
    def draw(
        cls,
        batch: int,
        generator: torch.Generator,
        device: torch.device,
        sigma_affine: float = SIGMA_AFFINE,
        sigma_tps: float = SIGMA_TPS,
        points_tps: int = POINTS_TPS,
    ) -> RandomWarp:
        """A warp per batch item, its noise from `generator` (the Trainer's, on `device`)."""
        noise = torch.randn((batch, 2, 3), generator=generator, device=device) * sigma_affine
        theta = noise + torch.eye(2, 3, device=device)
        points = coordinate_grid(points_tps, points_tps, device).view(-1, 2)
        params = (
            torch.randn((batch, 1, points_tps**2), generator=generator, device=device) * sigma_tps
        )
        return cls(theta, points, params)

    @property
    def batch(self) -> int:
        return self.theta.shape[0]

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) points -> (B, N, 2): affine, plus the TPS term r² log r.

        As the authors, r is the L1 distance to each control point and one TPS
        displacement moves x and y alike; kept so models trained here and theirs agree.
        """
        coords = coordinates.float()
        theta = self.theta.unsqueeze(1)  # (B, 1, 2, 3)
        moved = (theta[..., :2] @ coords.unsqueeze(-1) + theta[..., 2:]).squeeze(-1)
        distances = (coords.unsqueeze(2) - self.control_points.view(1, 1, -1, 2)).abs().sum(-1)
        radial = distances**2 * torch.log(distances + 1e-6)  # (B, N, P*P)
        return moved + (radial * self.control_params).sum(dim=2, keepdim=True)

    def warp_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Each frame sampled through its warp (reflection at the borders, as the authors)."""
        b, _, h, w = frames.shape
        grid = coordinate_grid(h, w, frames.device).view(1, h * w, 2).expand(b, -1, -1)
        grid = self.warp_coordinates(grid).view(b, h, w, 2)
        return F.grid_sample(
            frames.float(), grid, padding_mode="reflection", align_corners=True
        ).to(frames.dtype)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B, N, 2, 2) d warp / d point at each point, by autograd of the warp.

        The graph is kept (create_graph) so the loss's gradient reaches the keypoints
        through the Jacobian too, as in the authors' training.
        """
        if not coordinates.requires_grad:
            coordinates = coordinates.detach().requires_grad_(True)
        warped = self.warp_coordinates(coordinates)
        (grad_x,) = torch.autograd.grad(warped[..., 0].sum(), coordinates, create_graph=True)
        (grad_y,) = torch.autograd.grad(warped[..., 1].sum(), coordinates, create_graph=True)
        return torch.stack([grad_x, grad_y], dim=-2).float()


def equivariance_losses(
    kp_driving: dict[str, torch.Tensor],
    kp_warped: dict[str, torch.Tensor],
    warp: RandomWarp,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(value, jacobian) equivariance losses, unweighted.

    value: mean |kp(D) - T(kp(T⁻¹ D))|. jacobian: mean |I - J(D)⁻¹ · J_T · J(T⁻¹ D)|,
    where T⁻¹ D is the driving frame D warped by T (sampled at T's points).
    """
    value_w = kp_warped["value"]
    # fp32 whatever the autocast around: an inverse and a second derivative in bf16 drift.
    with torch.autocast(value_w.device.type, enabled=False):
        value_d = kp_driving["value"].float()
        value = (value_d - warp.warp_coordinates(value_w)).abs().mean()
        mapped = warp.jacobian(value_w) @ kp_warped["jacobian"].float()
        relative = inverse_2x2(kp_driving["jacobian"].float()) @ mapped
        eye = torch.eye(2, device=relative.device).view(1, 1, 2, 2)
        jacobian = (eye - relative).abs().mean()
    return value, jacobian


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 2, 2) matrices in closed form.

    A singular Jacobian gives inf/NaN here (the Trainer rolls back such a step),
    where torch.linalg.inv would raise and end the run.
    """
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    rows = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
    return rows / det[..., None, None]
