"""The lighting network of fast-swap's light loss: relighting is directional, and a short
siamese training on the sample faceset `a` gives features that tell lights apart and not
faces, measured on faces it never saw (faceset `b`, a different person, and `a`'s
held-out faces)."""

from __future__ import annotations

import pytest
import torch

from engine.train.data import load_faces
from engine.train.families.fast_swap.light import (
    LIGHTS,
    MARGIN,
    LightNet,
    face_normals,
    light_loss,
    relight,
    train_light,
)
from engine.workspace import Workspace

STEPS = 60  # about 4 s on one quiet core; the separation below holds from ~40 on
FRONTAL = 0
RIGHT, BELOW, LEFT, ABOVE = 1, 3, 5, 7  # LIGHTS' ring starts at +x and turns toward +y


@pytest.fixture(scope="module")
def trained(sample_workspace: Workspace) -> tuple[LightNet, list[float], torch.Tensor]:
    """A lighting network trained on `a`'s training faces, its losses, and held-out faces
    (float, [0,1]): ten of `b` and `a`'s held-out ones."""
    a = load_faces(sample_workspace, "a", 64)
    b = load_faces(sample_workspace, "b", 64)
    torch.manual_seed(0)
    net = LightNet()
    losses = train_light(net, a.faces, STEPS, torch.Generator().manual_seed(0))
    held = torch.cat([b.faces[:: len(b) // 10][:10], a.held_faces]).float() / 255
    return net, losses, held


def _halves(x: torch.Tensor) -> tuple[float, float, float, float]:
    """Mean brightness of the face's left, right, top and bottom halves (inside the face)."""
    s = x.shape[-1]
    inner = x[..., s // 8 : -s // 8, s // 8 : -s // 8].mean(dim=-3)  # grey, face region
    h = inner.shape[-1] // 2
    return (
        float(inner[..., :, :h].mean()),
        float(inner[..., :, h:].mean()),
        float(inner[..., :h, :].mean()),
        float(inner[..., h:, :].mean()),
    )


def test_lights_are_unit_and_distinct() -> None:
    assert LIGHTS.shape == (9, 3)
    assert torch.allclose(LIGHTS.norm(dim=1), torch.ones(9))
    assert torch.equal(LIGHTS[FRONTAL], torch.tensor([0.0, 0.0, 1.0]))
    gaps = torch.cdist(LIGHTS, LIGHTS) + torch.eye(9) * 9
    assert gaps.min() > 0.3  # neighbours ~35 degrees apart at least
    assert (LIGHTS[1:, 2] > 0.5).all()  # all in front of the face
    n = face_normals(32)
    assert torch.allclose(n.norm(dim=0), torch.ones(32, 32), atol=1e-5)
    assert torch.equal(n[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # flat outside the face
    assert n[0, 16, 6] < -0.5 and n[0, 16, 25] > 0.5  # cheeks turn away left and right


def test_relight_is_directional(sample_workspace: Workspace) -> None:
    face = load_faces(sample_workspace, "b", 64).faces[:1].float() / 255
    grey = torch.full((1, 3, 64, 64), 0.5)
    for x in (grey, face):
        base = _halves(x)
        lit = {
            k: _halves(relight(x, LIGHTS[k : k + 1], torch.ones(1)))
            for k in (LEFT, RIGHT, ABOVE, BELOW)
        }
        # Relative to the face as it was: the lit side gains on the side turned away.
        gain = {k: tuple(v / b for v, b in zip(lit[k], base, strict=True)) for k in lit}
        assert gain[LEFT][0] > gain[LEFT][1] * 1.3  # a light on the left darkens the right
        assert gain[RIGHT][1] > gain[RIGHT][0] * 1.3
        assert gain[ABOVE][2] > gain[ABOVE][3] * 1.3
        assert gain[BELOW][3] > gain[BELOW][2] * 1.3


def test_relight_keeps_brightness_range_and_strength(sample_workspace: Workspace) -> None:
    faces = load_faces(sample_workspace, "a", 64).faces[:9].float() / 255
    full = relight(faces, LIGHTS, torch.ones(9))
    assert full.shape == faces.shape and full.dtype == torch.float32
    assert full.min() >= 0 and full.max() <= 1
    means = full.mean(dim=(1, 2, 3)) / faces.mean(dim=(1, 2, 3))
    assert ((means > 0.9) & (means < 1.1)).all(), means  # clipping loses a little at most
    assert torch.equal(relight(faces, LIGHTS, torch.zeros(9)), faces)
    half = relight(faces, LIGHTS, torch.full((9,), 0.5))
    change_half = (half - faces).abs().mean()
    change_full = (full - faces).abs().mean()
    assert 0.3 * change_full < change_half < 0.7 * change_full
    # Each face in a batch takes its own light and strength.
    mixed = relight(faces[:2], LIGHTS[[LEFT, RIGHT]], torch.tensor([1.0, 0.0]))
    alone = relight(faces[:1], LIGHTS[LEFT : LEFT + 1], torch.ones(1))
    assert torch.allclose(mixed[:1], alone)
    assert torch.equal(mixed[1], faces[1])


def test_training_separates_lights_not_faces(
    trained: tuple[LightNet, list[float], torch.Tensor],
) -> None:
    net, losses, held = trained
    assert len(losses) == STEPS
    assert sum(losses[-10:]) < 0.25 * sum(losses[:10]), losses
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    n, k = len(held), len(LIGHTS)
    x = held[:, None].expand(n, k, 3, 64, 64).reshape(-1, 3, 64, 64)
    lights = LIGHTS.repeat(n, 1)
    with torch.no_grad():
        f = net.features(relight(x, lights, torch.ones(n * k))).view(n, k, -1)
        # The same light again, weaker, on the face moved by 2 px: still "lit alike".
        moved = relight(x.roll(2, dims=-1), lights, torch.full((n * k,), 0.8))
        g = net.features(moved).view(n, k, -1)
    other_light = ~torch.eye(k, dtype=torch.bool)
    other_face = ~torch.eye(n, dtype=torch.bool)
    same_face_same_light = (f - g).norm(dim=-1)  # (n, k)
    same_face_other_light = torch.cdist(f, f)  # (n, k, k)
    other_face_same_light = torch.cdist(f.transpose(0, 1), f.transpose(0, 1))  # (k, n, n)

    # Same face: under the same light closer than under any other light.
    closer = same_face_same_light[:, :, None] < same_face_other_light
    assert closer[:, other_light].float().mean() > 0.95
    # Different faces under one light closer than one face under two lights, on most of
    # the (face, face, light, light) combinations; and by a wide margin on average.
    pairs = other_face_same_light.permute(1, 2, 0)[:, :, :, None] < same_face_other_light[:, None]
    share = pairs[other_face[:, :, None, None] & other_light[None, None]].float().mean()
    assert share > 0.9, share
    apart = same_face_other_light[:, other_light].mean()
    alike = other_face_same_light[:, other_face].mean()
    assert apart > 0.5 * MARGIN
    assert apart > 3 * alike, (apart, alike)


def test_untrained_network_does_not_separate(
    trained: tuple[LightNet, list[float], torch.Tensor],
) -> None:
    """The measure above can fail: a network that learnt nothing fails it."""
    _, _, held = trained
    torch.manual_seed(0)
    net = LightNet().eval()
    n, k = len(held), len(LIGHTS)
    x = held[:, None].expand(n, k, 3, 64, 64).reshape(-1, 3, 64, 64)
    with torch.no_grad():
        f = net.features(relight(x, LIGHTS.repeat(n, 1), torch.ones(n * k))).view(n, k, -1)
    apart = torch.cdist(f, f)[:, ~torch.eye(k, dtype=torch.bool)].mean()
    alike = torch.cdist(f.transpose(0, 1), f.transpose(0, 1))[:, ~torch.eye(n, dtype=torch.bool)]
    assert apart < 3 * alike.mean()


def test_light_loss(trained: tuple[LightNet, list[float], torch.Tensor]) -> None:
    net, _, held = trained
    n = len(held)
    assert float(light_loss(net, held, held)) == 0
    left = LIGHTS[LEFT].expand(n, 3)
    weak = light_loss(net, relight(held, left, torch.full((n,), 0.3)), held)
    strong = light_loss(net, relight(held, left, torch.ones(n)), held)
    assert 0 < float(weak) < float(strong)
    assert float(strong) > 0.5
    # Gradients reach the output only; the target and the frozen network get none.
    big = torch.nn.functional.interpolate(held, size=128, mode="bilinear")  # any size
    out = relight(big, left, torch.ones(n)).requires_grad_(True)
    target = big.clone().requires_grad_(True)
    loss = light_loss(net, out, target)
    loss.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None for p in net.parameters())


def test_train_light_is_seeded_and_refuses_one_face() -> None:
    faces = torch.randint(0, 256, (6, 3, 96, 96), dtype=torch.uint8)  # resized to 64 inside

    def run() -> tuple[list[float], torch.Tensor]:
        torch.manual_seed(1)
        net = LightNet()
        losses = train_light(net, faces, 3, torch.Generator().manual_seed(5), batch=4)
        return losses, net.fc[-1].weight

    (first, w1), (second, w2) = run(), run()
    assert first == second and torch.equal(w1, w2)
    torch.manual_seed(1)
    third = train_light(LightNet(), faces, 3, torch.Generator().manual_seed(6), batch=4)
    assert third != first
    with pytest.raises(ValueError, match="two faces"):
        train_light(LightNet(), faces[:1], 1, torch.Generator())
