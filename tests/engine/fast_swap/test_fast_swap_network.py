"""Fast Face-swap's transformation network: its branches and shapes for each preset, its
output range, the sizes it refuses, and that it can learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.train.families.fast_swap import FAMILY
from engine.train.families.fast_swap.network import TransformNet


def _preset(name: str) -> tuple[int, int, int]:
    values = next(p for p in FAMILY.presets if p.name == name).values
    return values["size"], values["scales"], values["width"]


def _smooth_image(seed: int, size: int = 64) -> torch.Tensor:
    """A (1, 3, size, size) image in [0, 1] with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=g)
    fine = torch.rand(1, 3, 16, 16, generator=g)
    image = 0.7 * F.interpolate(coarse, size, mode="bilinear") + 0.3 * F.interpolate(
        fine, size, mode="bilinear"
    )
    return image.clamp(0, 1)


@pytest.mark.parametrize(
    ("preset", "resolutions"),
    [
        ("fast-swap-small", [8, 16, 32, 64]),
        ("fast-swap", [8, 16, 32, 64, 128]),
        ("fast-swap-256", [8, 16, 32, 64, 128, 256]),
    ],
)
def test_each_preset_has_its_branches_and_keeps_the_face_size(preset, resolutions):
    size, scales, width = _preset(preset)
    # On the meta device the shapes come out without the arithmetic (256 px is slow on a CPU).
    with torch.device("meta"):
        net = TransformNet(size, scales, width)
        seen: list[tuple[int, ...]] = []
        for branch in net.branches:
            branch.register_forward_hook(lambda _m, args, _o: seen.append(tuple(args[0].shape)))
        out = net(torch.empty(2, 3, size, size))
    assert net.size == size
    assert out.shape == (2, 3, size, size)
    assert seen == [(2, 3, r, r) for r in resolutions]
    # The joins widen by `width` per branch joined: the last one is width * scales wide.
    assert [j[0].out_channels for j in net.joins] == [width * k for k in range(2, scales + 1)]
    assert net.head.in_channels == width * scales and net.head.out_channels == 3


def test_small_and_default_presets_run_for_real_in_range():
    for preset in ("fast-swap-small", "fast-swap"):
        size, scales, width = _preset(preset)
        torch.manual_seed(0)
        net = TransformNet(size, scales, width)
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        out = net(x)
        assert out.shape == x.shape and out.dtype == torch.float32
        assert out.min() >= 0 and out.max() <= 1
        assert out.std() > 0
    # Even driven far out of range the sigmoid keeps it in [0, 1].
    with torch.no_grad():
        net.head.weight.mul_(1000)
    wild = net(x)
    assert wild.min() >= 0 and wild.max() <= 1
    assert ((wild == 0) | (wild == 1)).float().mean() > 0.1


@pytest.mark.parametrize(
    ("size", "scales", "words"),
    [
        (100, 5, "does not divide"),
        (96, 7, "does not divide"),
        (24, 4, "3 px coarsest"),
        (16, 4, "2 px coarsest"),
    ],
)
def test_refuses_sizes_the_branches_cannot_take(size, scales, words):
    with pytest.raises(ValueError, match=words) as refused:
        TransformNet(size, scales, 8)
    assert "\n" not in str(refused.value)


def test_the_smallest_coarsest_branch_is_four_pixels():
    assert TransformNet(32, 4, 4)(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="works at 32 px"):
        TransformNet(32, 4, 4)(torch.rand(1, 3, 64, 64))


def test_batch_and_channels_last_give_the_same_faces():
    """In eval mode each face comes out the same alone or in a batch, in either layout."""
    torch.manual_seed(0)
    net = TransformNet(32, 3, 8)
    # Some training steps so the batch norms' running statistics are not the identity.
    net.train()
    with torch.no_grad():
        for seed in range(3):
            net(torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed)))
    net.eval()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
        net.to(memory_format=torch.channels_last)
        last = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, together, rtol=1e-5, atol=1e-5)
    assert last.is_contiguous(memory_format=torch.channels_last)


def test_a_few_adam_steps_fit_one_image():
    torch.manual_seed(0)
    size, scales, width = _preset("fast-swap-small")
    net = TransformNet(size, scales, width)
    source, target = _smooth_image(1, size), _smooth_image(2, size)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.mse_loss(net(source), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, losses
    # Every branch took part: each got gradient.
    for branch in net.branches:
        assert branch[0].weight.grad.abs().sum() > 0
