"""Fast Face-swap's losses (Korshunova et al. 2017): content, patch style, total variation,
and the head-pose choice of the style photos.

Every loss is divided by the mean square of what it compares against (detached), so a
weight means the same whatever the scale of the VGG weights' features.

The style loss is Li & Wand's patch MRF restricted as the paper does: the patch of the
output at position i is matched only against the patches at the same position i of the
B photos whose head pose is nearest the input's. Patches are never unfolded: for 3x3
patches of N photos that would be N*C*9*H*W floats per face (gigabytes at 128 px). A
patch dot product is the sum over the window of the per-pixel channel dot products, so
with a box filter over (B, N, H, W) maps of dot products and squared norms the cosine
similarities and squared patch distances come out directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def content_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two feature maps over the mean square of `target`."""
    out, target = out.float(), target.float()
    scale = target.detach().pow(2).mean() + EPS
    return (out - target).pow(2).mean() / scale


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference over all pairs of horizontal and vertical neighbours."""
    x = x.float()
    dh = (x[..., :, 1:] - x[..., :, :-1]).pow(2)
    dv = (x[..., 1:, :] - x[..., :-1, :]).pow(2)
    return (dh.sum() + dv.sum()) / (dh.numel() + dv.numel())


def nearest_poses(poses: torch.Tensor, photo_poses: torch.Tensor, n: int) -> torch.Tensor:
    """(B, P) head poses and (M, P) photos' poses (degrees) → (B, min(n, M)) long indices of
    the photos nearest each pose (Euclidean), nearest first."""
    if n < 1 or photo_poses.shape[0] == 0:
        raise ValueError(f"cannot choose {n} of {photo_poses.shape[0]} photos")
    # Written out rather than cdist: cdist's matrix-product shortcut can misorder near ties.
    diff = poses.float()[:, None, :] - photo_poses.float().to(poses.device)[None, :, :]
    distance = diff.pow(2).sum(-1)
    k = min(n, photo_poses.shape[0])
    return distance.topk(k, dim=1, largest=False, sorted=True).indices


def _box_sum(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, N, H, W) → (B, N, H-patch+1, W-patch+1): the sum over each patch window."""
    return F.avg_pool2d(maps, patch, stride=1) * (patch * patch)


def patch_style_loss(
    out: torch.Tensor, photos: torch.Tensor, patch: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch style loss of `out` (B, C, H, W) against `photos` (B, N, C, H, W), one layer's
    features of each input's N nearest-pose photos.

    At every valid patch position i (stride 1) the photo j* whose patch at i has the
    highest cosine similarity with out's patch at i is chosen; the loss is the mean over
    batch and positions of ||patch_i(out) - patch_i(photo j*)||^2 / (C * patch^2), over the
    mean square of the photos' features. Returns (loss, (B, H', W') long index of j*).
    Only `out` gets gradients; the choice of j* is not differentiated.
    """
    b, c, h, w = out.shape
    if photos.dim() != 5 or photos.shape[0] != b or photos.shape[2:] != out.shape[1:]:
        raise ValueError(
            f"photos {tuple(photos.shape)} do not match out {tuple(out.shape)} as (B, N, C, H, W)"
        )
    if h < patch or w < patch:
        raise ValueError(f"{h}x{w} features are smaller than a {patch}x{patch} patch")
    out = out.float()
    photos = photos.detach()
    n = photos.shape[1]
    # Per-pixel channel dot products and squared norms, one photo at a time: the largest
    # temporary is one (B, C, H, W) map, never a copy of all N photos.
    dots = torch.stack([(out * photos[:, j].float()).sum(1) for j in range(n)], dim=1)
    with torch.no_grad():
        photo_sq = torch.stack([photos[:, j].float().pow(2).sum(1) for j in range(n)], dim=1)
        scale = photo_sq.mean() / c + EPS  # the mean square of the photos' features
    out_sq = out.pow(2).sum(1, keepdim=True)

    patch_dots = _box_sum(dots, patch)  # (B, N, H', W')
    patch_photo_sq = _box_sum(photo_sq, patch)
    patch_out_sq = _box_sum(out_sq, patch)  # (B, 1, H', W')
    with torch.no_grad():
        # out's own norm is the same for every j: the cosine's argmax needs only the photos'.
        cosine = patch_dots / (patch_photo_sq.sqrt() + EPS)
        index = cosine.argmax(dim=1)
    pick = index[:, None]
    distance = (
        patch_out_sq[:, 0]
        - 2 * patch_dots.gather(1, pick)[:, 0]
        + patch_photo_sq.gather(1, pick)[:, 0]
    )
    # The expanded square can dip a rounding error below zero where a patch matches exactly.
    distance = distance.clamp_min(0)
    loss = distance.mean() / (c * patch * patch) / scale
    return loss, index
