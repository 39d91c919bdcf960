"""FOMM's losses on hand-made inputs: the pyramid, the perceptual loss, the equivariance maths."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.train.families.fomm.losses import (
    RandomWarp,
    downsample,
    equivariance_losses,
    inverse_2x2,
    perceptual_loss,
    pyramid,
    usable_scales,
)
from engine.train.vgg import Vgg19

CPU = torch.device("cpu")


def _authors_downsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The anti-aliased resize written out: a normalised Gaussian of sigma (1/s - 1)/2 and
    2*round(4 sigma)+1 taps, zero padding, every (1/s)-th pixel."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    weight = kernel.expand(x.shape[1], 1, size, size)
    out = F.conv2d(F.pad(x, (size // 2,) * 4), weight, groups=x.shape[1])
    step = int(1 / scale)
    return out[:, :, ::step, ::step]


def test_pyramid_is_the_authors_anti_aliased_resize():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    levels = pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16, 8]
    assert levels[0] is x
    for scale, level in zip((0.5, 0.25, 0.125), levels[1:], strict=True):
        torch.testing.assert_close(level, _authors_downsample(x, scale), rtol=1e-5, atol=1e-5)
    flat = downsample(torch.full((1, 3, 64, 64), 0.7), 0.25)
    torch.testing.assert_close(flat[..., 4:-4, 4:-4], torch.full_like(flat[..., 4:-4, 4:-4], 0.7))


def test_levels_too_small_for_relu5_1_are_left_out():
    assert usable_scales(256) == (1.0, 0.5, 0.25, 0.125)
    assert usable_scales(128) == (1.0, 0.5, 0.25, 0.125)
    assert usable_scales(64) == (1.0, 0.5, 0.25)


def test_perceptual_loss_compares_through_frozen_vgg():
    torch.manual_seed(0)
    vgg = Vgg19()
    # 32 px (levels 32 and 16) keeps VGG-19 quick on a CPU.
    target = torch.rand(1, 3, 32, 32)
    assert perceptual_loss(vgg, target.clone(), target, 10.0).item() == 0.0
    prediction = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss = perceptual_loss(vgg, prediction, target, 10.0)
    assert loss.item() > 0
    with torch.no_grad():
        half = perceptual_loss(vgg, prediction, target, 5.0)
    assert half.item() == pytest.approx(loss.item() / 2, rel=1e-5)
    loss.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_warp_is_drawn_from_the_generator():
    a = RandomWarp.draw(3, torch.Generator().manual_seed(5), CPU)
    b = RandomWarp.draw(3, torch.Generator().manual_seed(5), CPU)
    c = RandomWarp.draw(3, torch.Generator().manual_seed(6), CPU)
    torch.testing.assert_close(a.theta, b.theta)
    torch.testing.assert_close(a.control_params, b.control_params)
    assert not torch.equal(a.theta, c.theta)
    assert a.control_points.shape == (25, 2) and a.control_params.shape == (3, 1, 25)
    assert (a.theta - torch.eye(2, 3)).abs().max() < 0.05 * 6  # sigma 0.05: within 6 sigma


def test_identity_warp_leaves_frames_alone():
    gen = torch.Generator().manual_seed(0)
    warp = RandomWarp.draw(2, gen, CPU, sigma_affine=0.0, sigma_tps=0.0)
    frames = torch.rand(2, 3, 16, 20, generator=gen)
    torch.testing.assert_close(warp.warp_frames(frames), frames, rtol=1e-5, atol=1e-5)


def test_warped_frame_is_sampled_where_the_warp_says():
    """A shift by 2 px to the right in sampling coordinates moves the picture 2 px left."""
    frames = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    theta = torch.tensor([[[1.0, 0.0, 2 * 2 / 8], [0.0, 1.0, 0.0]]])
    warp = RandomWarp(theta, torch.zeros(1, 2), torch.zeros(1, 1, 1))
    out = warp.warp_frames(frames)
    torch.testing.assert_close(out[..., :7], frames[..., 2:], rtol=1e-5, atol=1e-5)


def test_jacobian_matches_finite_differences():
    gen = torch.Generator().manual_seed(3)
    warp = RandomWarp.draw(2, gen, CPU, sigma_affine=0.1, sigma_tps=0.05)
    points = torch.rand(2, 7, 2, generator=gen, dtype=torch.float64).float() * 1.8 - 0.9
    jac = warp.jacobian(points.clone().requires_grad_(True))
    eps = 1e-3
    columns = []
    for k in range(2):
        step = torch.zeros(2)
        step[k] = eps
        diff = warp.warp_coordinates(points + step) - warp.warp_coordinates(points - step)
        columns.append(diff / (2 * eps))
    numeric = torch.stack(columns, dim=-1)  # d warp_i / d x_k at [..., i, k]
    torch.testing.assert_close(jac.detach(), numeric, rtol=2e-3, atol=2e-3)


def test_equivariance_is_zero_for_keypoints_that_move_with_the_warp():
    """Pure affine warp T(p) = A p + t: keypoints found at q in the warped frame belong at
    T(q) in the driving frame, with Jacobian A @ J(q). Then both losses vanish."""
    gen = torch.Generator().manual_seed(4)
    warp = RandomWarp.draw(2, gen, CPU, sigma_affine=0.1, sigma_tps=0.0)
    q = (torch.rand(2, 5, 2, generator=gen) * 2 - 1).requires_grad_(True)
    j_w = torch.eye(2) + 0.1 * torch.randn(2, 5, 2, 2, generator=gen)
    a = warp.theta[:, None, :, :2]
    driving = {"value": warp.warp_coordinates(q).detach(), "jacobian": a @ j_w}
    warped = {"value": q, "jacobian": j_w}
    value, jacobian = equivariance_losses(driving, warped, warp)
    assert value.item() < 1e-6 and jacobian.item() < 1e-5
    off = {"value": driving["value"] + 0.01, "jacobian": driving["jacobian"]}
    value, _ = equivariance_losses(off, warped, warp)
    assert value.item() == pytest.approx(0.01, rel=1e-3)
    # The loss's gradient reaches the warped frame's keypoints (the keypoint detector).
    value.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_equivariance_is_computed_in_fp32_under_autocast():
    gen = torch.Generator().manual_seed(7)
    warp = RandomWarp.draw(1, gen, CPU)
    kp = {"value": torch.rand(1, 3, 2) * 2 - 1, "jacobian": torch.eye(2).expand(1, 3, 2, 2)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, jacobian = equivariance_losses(kp, dict(kp), warp)
    assert value.dtype == jacobian.dtype == torch.float32


def test_inverse_2x2_and_a_singular_jacobian_gives_non_finite_not_an_error():
    m = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(inverse_2x2(m), torch.linalg.inv(m), rtol=1e-4, atol=1e-4)
    singular = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    assert not math.isfinite(inverse_2x2(singular).abs().sum().item())
