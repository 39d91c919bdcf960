"""Fast Face-swap's losses on hand-made tensors: the patch match, its gradients and memory,
the head-pose choice, total variation and the content loss's scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.train.families.fast_swap.losses import (
    content_loss,
    nearest_poses,
    patch_style_loss,
    tv_loss,
)

ROOT = Path(__file__).resolve().parents[3]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unfolded_style_loss(
    out: torch.Tensor, photos: torch.Tensor, patch: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss written the obvious (memory-hungry) way: every patch unfolded, cosine
    similarity per position, the squared distance to the chosen photo's patch."""
    b, n, c, h, w = photos.shape
    rows, cols = h - patch + 1, w - patch + 1
    out_p = F.unfold(out, patch)  # (B, C*p*p, L)
    photo_p = F.unfold(photos.reshape(b * n, c, h, w), patch).reshape(b, n, c * patch**2, -1)
    cosine = F.cosine_similarity(out_p[:, None], photo_p, dim=2, eps=1e-12)  # (B, N, L)
    index = cosine.argmax(dim=1)  # (B, L)
    chosen = photo_p.gather(1, index[:, None, None, :].expand(b, 1, c * patch**2, rows * cols))
    distance = (out_p - chosen[:, 0]).pow(2).sum(1) / (c * patch**2)  # (B, L)
    return distance.mean() / photos.pow(2).mean(), index.reshape(b, rows, cols)


def test_each_position_takes_the_photo_that_matches_it_there():
    """Photo 0 equals out on the left half, photo 1 on the right half, photo 2 nowhere: the
    index map splits where they do, and the loss is 0 away from the seam."""
    b, c, h, w = 2, 8, 9, 12
    out = torch.randn(b, c, h, w, generator=_gen(1))
    photos = torch.randn(b, 3, c, h, w, generator=_gen(2))
    photos[:, 0, ..., :6] = out[..., :6]
    photos[:, 0, ..., 6:] = -out[..., 6:]  # opposite: cosine -1 where photo 1 is the match
    photos[:, 1, ..., 6:] = out[..., 6:]
    photos[:, 1, ..., :6] = -out[..., :6]
    loss, index = patch_style_loss(out, photos)
    assert index.shape == (b, h - 2, w - 2) and index.dtype == torch.long
    # Patch columns 0..3 lie wholly in x < 6, columns 6..9 wholly in x >= 6.
    assert (index[..., :4] == 0).all()
    assert (index[..., 6:] == 1).all()
    # Across the seam no photo matches the whole patch, so the loss is not zero; it is the
    # unfolded computation's.
    want_loss, want_index = _unfolded_style_loss(out, photos)
    assert torch.equal(index, want_index)
    torch.testing.assert_close(loss, want_loss, rtol=1e-4, atol=1e-6)
    assert loss > 0


def test_loss_is_zero_when_out_is_one_of_the_photos():
    out = torch.randn(3, 16, 7, 7, generator=_gen(3))
    photos = torch.randn(3, 5, 16, 7, 7, generator=_gen(4))
    photos[:, 3] = out
    loss, index = patch_style_loss(out, photos)
    assert (index == 3).all()
    assert abs(loss.item()) < 1e-6


def test_matches_the_unfolded_loss_on_random_features_and_any_patch_size():
    out = torch.randn(2, 6, 10, 8, generator=_gen(5)).relu()  # VGG features are ReLU outputs
    photos = torch.randn(2, 4, 6, 10, 8, generator=_gen(6)).relu()
    for patch in (1, 3, 5):
        loss, index = patch_style_loss(out, photos, patch)
        want_loss, want_index = _unfolded_style_loss(out, photos, patch)
        assert torch.equal(index, want_index), patch
        torch.testing.assert_close(loss, want_loss, rtol=1e-4, atol=1e-6)


def test_gradients_reach_out_only_and_equal_the_unfolded_ones():
    base = torch.randn(2, 6, 8, 8, generator=_gen(7))
    photos = torch.randn(2, 4, 6, 8, 8, generator=_gen(8)).requires_grad_(True)
    out = base.clone().requires_grad_(True)
    loss, _ = patch_style_loss(out, photos)
    loss.backward()
    assert photos.grad is None
    assert out.grad is not None and out.grad.abs().sum() > 0

    reference = base.clone().requires_grad_(True)
    want, _ = _unfolded_style_loss(reference, photos.detach())
    want.backward()
    torch.testing.assert_close(out.grad, reference.grad, rtol=1e-4, atol=1e-6)

    # A step against the gradient brings out's patches nearer their matches.
    with torch.no_grad():
        after, _ = patch_style_loss(out - 0.1 * out.grad / out.grad.norm(), photos)
    assert after < loss


def test_loss_keeps_its_value_whatever_the_features_scale():
    out = torch.randn(1, 4, 6, 6, generator=_gen(9))
    photos = torch.randn(1, 3, 4, 6, 6, generator=_gen(10))
    loss, index = patch_style_loss(out, photos)
    scaled, scaled_index = patch_style_loss(out * 40, photos * 40)
    assert torch.equal(index, scaled_index)
    torch.testing.assert_close(scaled, loss, rtol=1e-4, atol=1e-6)


def test_refuses_mismatched_or_too_small_features():
    with pytest.raises(ValueError, match="do not match"):
        patch_style_loss(torch.zeros(2, 4, 6, 6), torch.zeros(2, 3, 5, 6, 6))
    with pytest.raises(ValueError, match="smaller than"):
        patch_style_loss(torch.zeros(1, 4, 2, 6), torch.zeros(1, 3, 4, 2, 6))


_MEMORY_PROBE = """
import json, resource, sys, torch
from engine.train.families.fast_swap.losses import patch_style_loss
torch.set_num_threads(1)
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
g = torch.Generator().manual_seed(0)
photos = torch.rand(8, 16, 256, 32, 32, generator=g)
out = torch.rand(8, 256, 32, 32, generator=g).requires_grad_(True)
small, _ = patch_style_loss(out[:1, :, :8, :8], photos[:1, :2, :, :8, :8])  # warm the ops up
small.backward()
out.grad = None
before = peak_mib()
loss, index = patch_style_loss(out, photos)
loss.backward()
print(json.dumps({"before": before, "after": peak_mib(), "photos": photos.numel() * 4 / 2**20,
                  "finite": bool(torch.isfinite(out.grad).all())}))
"""


def test_memory_stays_near_one_feature_map_at_vgg_scale():
    """(8, 16, 256, 32, 32) photo features are 128 MiB; unfolding their 3x3 patches would
    take over a GiB more. The loss and its backward pass must add well under the photos'
    own size (measured in a fresh process: the peak resident memory)."""
    # glibc would serve the loop's freed 8 MiB temporaries from a fragmented heap and
    # count each one; a fixed mmap threshold hands blocks of 1 MiB or more back when
    # freed, so the peak resident memory is the peak of what was live.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20)}
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["finite"]
    added = report["after"] - report["before"]
    assert added < report["photos"] / 2, report


def test_nearest_poses_picks_the_closest_photos_nearest_first():
    photo_poses = torch.tensor(
        [[0.0, 0.0], [30.0, 0.0], [-30.0, 0.0], [0.0, 20.0], [45.0, 10.0], [-10.0, -5.0]]
    )
    poses = torch.tensor([[28.0, 2.0], [-12.0, -4.0], [1.0, 18.0]])
    chosen = nearest_poses(poses, photo_poses, 3)
    assert chosen.dtype == torch.long and chosen.shape == (3, 3)
    # Distances worked by hand: (28, 2) is 2.8 from 1, 18.8 from 4, 28.1 from 0.
    assert chosen[0].tolist() == [1, 4, 0]
    # (-12, -4): 2.2 from 5, 12.6 from 0, 18.4 from 2.
    assert chosen[1].tolist() == [5, 0, 2]
    # (1, 18): 2.2 from 3, 18.0 from 0, 25.5 from 5.
    assert chosen[2].tolist() == [3, 0, 5]


def test_nearest_poses_gives_every_photo_when_there_are_fewer_than_asked():
    photo_poses = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    chosen = nearest_poses(torch.tensor([[1.0, 0.0, 0.0]]), photo_poses, 16)
    assert chosen.tolist() == [[1, 0]]


def test_tv_of_a_constant_is_zero():
    assert tv_loss(torch.full((2, 3, 5, 7), 0.4)).item() == 0.0


def test_tv_of_a_checkerboard_and_of_a_ramp():
    # A checkerboard of 0 and 0.5: every neighbour differs by 0.5 → 0.25.
    yy, xx = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    board = ((yy + xx) % 2).float().mul(0.5).expand(2, 3, 4, 6)
    torch.testing.assert_close(tv_loss(board), torch.tensor(0.25))
    # A horizontal ramp of step 0.1 on 4x6: 4*5 horizontal pairs differ by 0.1, the 3*6
    # vertical ones not at all → 0.01 * 20 / 38.
    ramp = (xx.float() * 0.1).expand(1, 1, 4, 6)
    torch.testing.assert_close(tv_loss(ramp), torch.tensor(0.01 * 20 / 38))


def test_content_loss_is_the_relative_squared_difference_at_any_scale():
    target = torch.randn(2, 8, 5, 5, generator=_gen(11))
    out = target + 0.3 * torch.randn(2, 8, 5, 5, generator=_gen(12))
    loss = content_loss(out, target)
    torch.testing.assert_close(loss, (out - target).pow(2).mean() / target.pow(2).mean())
    for k in (0.1, 25.0):
        torch.testing.assert_close(content_loss(out * k, target * k), loss, rtol=1e-4, atol=0)
    assert content_loss(target, target).item() == 0.0
