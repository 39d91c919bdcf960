"""SwapLoss: zero at a perfect reconstruction, and each weight weighs where it says."""

from __future__ import annotations

import pytest
import torch
from kornia.metrics import ssim

from engine.errors import BadInputError
from engine.train.losses import SSIM_WINDOW, LossSpec, SwapLoss, ssim_map

SIZE = 32
FACE = (slice(4, 28), slice(4, 28))
EYES = (slice(10, 16), slice(8, 24))
BACKGROUND = (slice(0, 4), slice(0, 32))  # top rows, outside the face


def _target(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(n, 3, SIZE, SIZE, generator=gen) * 0.6 + 0.2
    masks = torch.zeros(n, 2, SIZE, SIZE)
    masks[:, 0, FACE[0], FACE[1]] = 1.0
    masks[:, 1, EYES[0], EYES[1]] = 1.0
    return target, masks


def _with_error(target: torch.Tensor, region: tuple[slice, slice], amount: float) -> torch.Tensor:
    pred = target.clone()
    pred[:, :, region[0], region[1]] += amount
    return pred


def _perfect_mask(masks: torch.Tensor) -> torch.Tensor:
    return masks[:, 0:1].clone()


def test_identical_images_cost_nothing() -> None:
    target, masks = _target()
    loss = SwapLoss(LossSpec())
    total, parts = loss(target.clone(), target, masks)
    assert total.item() < 1e-4
    total, parts = loss(target.clone(), target, masks, _perfect_mask(masks))
    assert total.item() < 1e-4
    assert set(parts) == {"ssim", "pixel", "eye_mouth", "mask"}
    for value in parts.values():
        assert value.dim() == 0 and not value.requires_grad


def test_loss_grows_with_the_error() -> None:
    target, masks = _target()
    loss = SwapLoss(LossSpec())
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
    totals = [loss((target + s * noise).clamp(0, 1), target, masks)[0].item() for s in (0.02, 0.1)]
    assert 0 < totals[0] < totals[1]


def test_eye_mouth_weight_puts_a_price_on_the_eyes() -> None:
    target, masks = _target()
    pred = _with_error(target, EYES, 0.1)
    light = SwapLoss(LossSpec(eye_mouth_weight=0.0))(pred, target, masks)[0]
    heavy = SwapLoss(LossSpec(eye_mouth_weight=5.0))(pred, target, masks)[0]
    assert heavy > light * 2
    # The region term is a mean over the region: 0.1 everywhere inside it.
    _, parts = SwapLoss(LossSpec())(pred, target, masks)
    assert parts["eye_mouth"].item() == pytest.approx(0.1, rel=1e-3)


def test_background_costs_background_weight_of_the_face() -> None:
    target, masks = _target()
    spec = LossSpec(ssim_weight=0.0, eye_mouth_weight=0.0, background_weight=0.1)
    inside = _with_error(target, (slice(16, 20), slice(4, 28)), 0.1)  # 4x24 px in the face
    outside = _with_error(target, BACKGROUND, 0.1)  # 4x32 px outside it
    cost_in = SwapLoss(spec)(inside, target, masks)[0].item()
    cost_out = SwapLoss(spec)(outside, target, masks)[0].item()
    per_px_in, per_px_out = cost_in / (4 * 24), cost_out / (4 * 32)
    assert per_px_out == pytest.approx(0.1 * per_px_in, rel=1e-3)
    # And with SSIM on, the ordering still holds.
    full = SwapLoss(LossSpec())
    assert full(outside, target, masks)[0] < full(inside, target, masks)[0]


@pytest.mark.parametrize("kind", ["l1", "mse"])
def test_both_pixel_kinds_work(kind: str) -> None:
    target, masks = _target()
    pred = _with_error(target, FACE, 0.1)
    total, parts = SwapLoss(LossSpec(kind=kind))(pred, target, masks)
    assert total > 0 and parts["pixel"] > 0


def test_mse_is_smaller_than_l1_for_small_errors() -> None:
    target, masks = _target()
    pred = _with_error(target, FACE, 0.1)
    l1 = SwapLoss(LossSpec(kind="l1"))(pred, target, masks)[1]["pixel"]
    mse = SwapLoss(LossSpec(kind="mse"))(pred, target, masks)[1]["pixel"]
    assert mse.item() == pytest.approx(0.1 * l1.item(), rel=1e-3)


def test_mask_term_only_with_a_predicted_mask() -> None:
    target, masks = _target()
    loss = SwapLoss(LossSpec())
    without, parts = loss(target.clone(), target, masks)
    assert "mask" not in parts
    wrong = torch.full((2, 1, SIZE, SIZE), 0.5)
    with_mask, parts = loss(target.clone(), target, masks, wrong)
    assert parts["mask"].item() == pytest.approx(0.25)
    assert with_mask.item() == pytest.approx(without.item() + 0.25, abs=1e-5)


def test_gradients_reach_pred_and_pred_mask() -> None:
    target, masks = _target()
    pred = _with_error(target, FACE, 0.05).requires_grad_()
    pred_mask = torch.full((2, 1, SIZE, SIZE), 0.5, requires_grad=True)
    total, _ = SwapLoss(LossSpec())(pred, target, masks, pred_mask)
    total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert pred_mask.grad is not None and pred_mask.grad.abs().sum() > 0


def test_bf16_prediction_under_autocast() -> None:
    target, masks = _target()
    base = _with_error(target, FACE, 0.05)
    pred = base.to(torch.bfloat16).requires_grad_()
    pred_mask = masks[:, 0:1].to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = SwapLoss(LossSpec())(pred, target, masks, pred_mask)
    assert total.dtype == torch.float32
    total.backward()
    assert pred.grad is not None and pred.grad.dtype == torch.bfloat16
    reference, _ = SwapLoss(LossSpec())(base, target, masks, masks[:, 0:1])
    assert total.item() == pytest.approx(reference.item(), rel=0.05)


def test_rejects_bad_specs() -> None:
    with pytest.raises(BadInputError):
        LossSpec(kind="l3")
    with pytest.raises(BadInputError):
        LossSpec(background_weight=2.0)


def test_ssim_map_matches_kornia() -> None:
    gen = torch.Generator().manual_seed(2)
    pred, target = torch.rand(2, 3, 40, 40, generator=gen), torch.rand(2, 3, 40, 40, generator=gen)
    pred = (0.7 * target + 0.3 * pred).requires_grad_()
    ours = ssim_map(pred, target)
    reference = ssim(pred, target, SSIM_WINDOW, eps=0.0)
    assert torch.allclose(ours, reference, atol=1e-5)
    (grad,) = torch.autograd.grad(ours.mean(), pred)
    (expected,) = torch.autograd.grad(reference.mean(), pred)
    assert torch.allclose(grad, expected, atol=1e-7, rtol=1e-4)
