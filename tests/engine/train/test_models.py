"""Swap models: sizes, shapes, the shared-encoder hot path, and that they learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.train.models import ArchSpec, SwapModel, build_model, count_parameters

ORIGINAL_PARAMS = 82_062_470  # faceswap's "original" at 64 px: about 82 M


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _faces(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size)


def _smooth_faces(n: int, size: int) -> torch.Tensor:
    """Random but image-like (smooth blobs), so there is structure to learn."""
    coarse = torch.rand(n, 3, 8, 8)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _assert_unit(t: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert t.shape == shape
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def _l1_step(model: SwapModel, opt: torch.optim.Optimizer, xa, xb) -> float:
    face_a, _, face_b, _ = model.forward_pair(xa, xb)
    loss = (face_a.float() - xa).abs().mean() + (face_b.float() - xb).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.slow
def test_original_is_faceswap_sized_and_trains() -> None:
    model = build_model(ArchSpec.for_preset("original"))
    assert count_parameters(model) == ORIGINAL_PARAMS
    assert 0.99 * 82e6 <= count_parameters(model) <= 1.01 * 82e6
    assert not model.learns_mask and model.size == 64

    x = _faces(2, 64)
    with torch.no_grad():
        face, mask = model(x, "b")
    _assert_unit(face, (2, 3, 64, 64))
    assert mask is None

    before = [p.detach().clone() for p in model.parameters()]
    _l1_step(model, torch.optim.Adam(model.parameters(), 1e-4), x, _faces(2, 64))
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed == len(before)


def test_tiny_shapes_pair_path_and_swap() -> None:
    model = build_model(ArchSpec.for_preset("tiny")).eval()
    assert model.learns_mask and model.identities == ("a", "b")
    xa, xb = _faces(3, 64), _faces(3, 64)
    with torch.no_grad():
        face_a, mask_a, face_b, mask_b = model.forward_pair(xa, xb)
        alone_a, alone_mask_a = model(xa, "a")
        alone_b, alone_mask_b = model(xb, "b")
        swapped, _ = model(xa, "b")
    for t in (face_a, face_b):
        _assert_unit(t, (3, 3, 64, 64))
    for t in (mask_a, mask_b):
        _assert_unit(t, (3, 1, 64, 64))
    # One encoder pass over both halves gives what two separate passes give.
    for pair, alone in ((face_a, alone_a), (mask_a, alone_mask_a), (face_b, alone_b)):
        assert torch.allclose(pair, alone, atol=1e-5)
    assert torch.allclose(mask_b, alone_mask_b, atol=1e-5)
    assert not torch.allclose(swapped, face_a, atol=1e-3)


def test_unknown_identity_is_refused() -> None:
    model = build_model(ArchSpec.for_preset("tiny"))
    with pytest.raises(ValueError, match="identity"):
        model(_faces(1, 64), "c")


@pytest.mark.parametrize("layout", ["df", "liae"])
@pytest.mark.slow
def test_hd_layouts_run_with_masks(layout: str) -> None:
    model = build_model(ArchSpec.for_preset("hd", 128, layout=layout)).eval()
    xa, xb = _faces(1, 128), _faces(1, 128)
    with torch.no_grad():
        face_a, mask_a, face_b, mask_b = model.forward_pair(xa, xb)
        swapped, swapped_mask = model(xa, "b")
        same, _ = model(xa, "a")
    for face, mask in ((face_a, mask_a), (face_b, mask_b), (swapped, swapped_mask)):
        _assert_unit(face, (1, 3, 128, 128))
        assert mask is not None
        _assert_unit(mask, (1, 1, 128, 128))
    assert torch.allclose(same, face_a, atol=1e-5)
    assert not torch.allclose(swapped, same, atol=1e-4)


def test_liae_shares_one_decoder() -> None:
    model = build_model(ArchSpec.for_preset("hd", layout="liae"))
    assert hasattr(model, "inter_ab") and hasattr(model, "inter_b")
    assert hasattr(model, "decoder") and not hasattr(model, "decoders")


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("hd", {"size": 100}),
        ("hd", {"size": 512}),
        ("hd", {"size": 144}),
        ("original", {"size": 128}),
        ("tiny", {"layout": "liae"}),
        ("hd", {"layout": "dfx"}),
        ("hd", {"enc_dims": 0}),
        ("hd", {"width": 3}),
        ("huge", {}),
    ],
)
def test_invalid_specs_raise(preset: str, overrides: dict) -> None:
    with pytest.raises(ValueError):
        ArchSpec.for_preset(preset, **overrides)


@pytest.mark.parametrize(
    "spec",
    [
        ArchSpec.for_preset("tiny"),
        ArchSpec.for_preset("original"),
        ArchSpec.for_preset("hd", 256, layout="liae", bottleneck=512, learn_mask=False),
    ],
)
def test_spec_round_trips_through_plain_dict(spec: ArchSpec) -> None:
    plain = spec.to_dict()
    assert all(type(v) in (int, str, bool) for v in plain.values())
    assert ArchSpec.from_dict(plain) == spec


def test_spec_defaults() -> None:
    hd = ArchSpec.for_preset("hd")
    assert (hd.size, hd.layout, hd.enc_dims, hd.dec_dims, hd.bottleneck, hd.learn_mask) == (
        128,
        "df",
        64,
        64,
        256,
        True,
    )
    assert ArchSpec.for_preset("tiny").size == 64
    assert not ArchSpec.for_preset("original").learn_mask


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [("tiny", {}), ("original", {}), ("hd", {"layout": "df"}), ("hd", {"layout": "liae"})],
)
def test_models_run_under_bf16_autocast(preset: str, overrides: dict) -> None:
    model = build_model(ArchSpec.for_preset(preset, **overrides))
    x = _faces(1, model.size)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        face_a, mask_a, face_b, _ = model.forward_pair(x, x)
    assert face_a.shape == face_b.shape == x.shape
    assert torch.isfinite(face_a.float()).all()
    assert (mask_a is not None) == model.learns_mask


@pytest.mark.slow
def test_tiny_learns_a_fixed_batch() -> None:
    model = build_model(ArchSpec.for_preset("tiny"))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xa, xb = _smooth_faces(4, 64), _smooth_faces(4, 64)
    losses = [_l1_step(model, opt, xa, xb) for _ in range(30)]
    assert losses[-1] <= 0.7 * losses[0], losses


@pytest.mark.parametrize(
    ("in_ch", "out_ch", "kernel", "stride", "size"),
    [(32, 64, 5, 2, 8), (64, 128, 3, 1, 4), (16, 32, 3, 1, 8)],  # two matmul paths, one direct
)
def test_small_map_conv_matches_torch_conv(
    in_ch: int, out_ch: int, kernel: int, stride: int, size: int
) -> None:
    from engine.train.models.blocks import Conv2d

    conv = Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)
    x = torch.randn(3, in_ch, size, size, requires_grad=True)
    ours = conv(x)
    ref = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=kernel // 2)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    grad_out = torch.randn_like(ref)
    ours_grads = torch.autograd.grad(ours, [x, conv.weight, conv.bias], grad_out)
    ref_grads = torch.autograd.grad(ref, [x, conv.weight, conv.bias], grad_out)
    for got, want in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_restored_adam_state_keeps_channels_last_layout(tmp_path):
    """On CUDA the model is channels-last, and fused Adam needs its moments laid out alike;
    checkpoints store them contiguous, so a resume must lay them out again (CPU shows it)."""
    from torch import nn

    from engine.train.checkpoint import load_checkpoint, save_checkpoint
    from engine.train.loop import make_optimizer

    def model_and_optimizer():
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 3))
        model = model.to(memory_format=torch.channels_last)
        return model, make_optimizer(model, 1e-3)

    model, optimizer = model_and_optimizer()
    model(torch.randn(2, 3, 12, 12)).sum().backward()
    optimizer.step()
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, optimizer, {}, {"step": 1})

    model2, optimizer2 = model_and_optimizer()
    load_checkpoint(path, model2, optimizer2)
    for param, saved in zip(model2.parameters(), model.parameters(), strict=True):
        for key, value in optimizer2.state[param].items():
            if value.shape == param.shape:
                assert value.stride() == param.stride(), key
                assert torch.equal(value, optimizer.state[saved][key]), key
