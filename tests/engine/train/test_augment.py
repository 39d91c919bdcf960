"""Augmenter: shapes and ranges, reproducibility, and that each part does what it says."""

from __future__ import annotations

import pytest
import torch

from engine.errors import BadInputError
from engine.train.augment import Augmenter, AugmentSpec

SIZE = 64
NONE = AugmentSpec(
    rotation=0, scale=0, shift=0, flip=0, warp=0, color_l=0, color_ab=0
)  # no augmentation at all
TOL = 1.0 / 255 + 1e-6


def _batch(n: int = 4, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random faces (bilinear-upsampled noise) and blob masks, uint8."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=gen)
    faces = torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear")
    masks = torch.zeros(n, 2, SIZE, SIZE)
    masks[:, 0, 12:52, 14:50] = 1.0
    masks[:, 1, 22:30, 18:46] = 1.0
    return _u8(faces).to(device), _u8(masks).to(device)


def _square_batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """A dark face with one bright square off centre, and both masks on that square."""
    faces = torch.full((n, 3, SIZE, SIZE), 0.15)
    faces[:, :, 10:30, 36:56] = 0.95
    masks = torch.zeros(n, 2, SIZE, SIZE)
    masks[:, :, 10:30, 36:56] = 1.0
    return _u8(faces), _u8(masks)


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _run(spec: AugmentSpec, faces: torch.Tensor, masks: torch.Tensor, seed: int = 1):
    return Augmenter(spec, SIZE)(faces, masks, _gen(seed, faces.device.type))


def _check_outputs(faces: torch.Tensor, outputs: tuple[torch.Tensor, ...]) -> None:
    inputs, targets, target_masks = outputs
    n = faces.shape[0]
    assert inputs.shape == targets.shape == (n, 3, SIZE, SIZE)
    assert target_masks.shape == (n, 2, SIZE, SIZE)
    for out in outputs:
        assert out.dtype == torch.float32
        assert out.device == faces.device
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_shapes_dtypes_ranges() -> None:
    faces, masks = _batch()
    _check_outputs(faces, _run(AugmentSpec(), faces, masks))


def test_same_generator_state_reproduces_and_other_states_differ() -> None:
    faces, masks = _batch()
    first = _run(AugmentSpec(), faces, masks, seed=7)
    again = _run(AugmentSpec(), faces, masks, seed=7)
    other = _run(AugmentSpec(), faces, masks, seed=8)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.allclose(first[0], other[0])
    assert not torch.allclose(first[1], other[1])


def test_saved_generator_state_replays_a_later_batch() -> None:
    faces, masks = _batch()
    augment, gen = Augmenter(AugmentSpec(), SIZE), _gen(3)
    augment(faces, masks, gen)
    state = gen.get_state()
    second = augment(faces, masks, gen)
    gen.set_state(state)
    assert torch.equal(augment(faces, masks, gen)[0], second[0])


def test_no_augmentation_returns_the_input() -> None:
    faces, masks = _batch()
    augment = Augmenter(NONE, SIZE)
    inputs, targets, target_masks = augment(faces, masks, _gen(0))
    plain = augment.preview(faces)
    assert torch.equal(inputs, targets)
    assert (targets - plain).abs().max() <= TOL
    assert (target_masks - masks.float() / 255).abs().max() <= TOL


def test_warp_moves_only_the_inputs() -> None:
    faces, masks = _batch()
    spec = AugmentSpec(rotation=0, scale=0, shift=0, flip=0, warp=0.06, color_l=0, color_ab=0)
    inputs, targets, target_masks = _run(spec, faces, masks)
    plain = faces.float() / 255
    assert (targets - plain).abs().max() <= 2 / 255
    assert (target_masks - masks.float() / 255).abs().max() <= 2 / 255
    assert (inputs - plain).abs().mean() > 2 / 255
    # Pinned borders: the outermost rows and columns stay (nearly) where they were.
    edge = (inputs - plain)[..., 0, :].abs().max()
    assert edge <= 2 / 255


def test_target_masks_follow_the_targets() -> None:
    faces, masks = _square_batch()
    spec = AugmentSpec(rotation=30, scale=0.2, shift=0.15, flip=0.5, warp=0.08)
    _, targets, target_masks = _run(spec, faces, masks, seed=5)
    # The geometry moved: the square is no longer where it started in every sample.
    assert (target_masks[:, 0] - masks[:, 0].float() / 255).abs().mean() > 0.01
    gray = targets.mean(dim=1)
    for channel in range(2):
        inside = target_masks[:, channel] > 0.5
        assert inside.any(dim=(1, 2)).all()
        assert gray[inside].mean() > gray[~inside].mean() + 0.4


def test_flip_mirrors_the_image() -> None:
    faces, masks = _batch()
    spec = AugmentSpec(rotation=0, scale=0, shift=0, flip=1.0, warp=0, color_l=0, color_ab=0)
    inputs, targets, target_masks = _run(spec, faces, masks)
    assert (targets - faces.flip(-1).float() / 255).abs().max() <= TOL
    assert (target_masks - masks.flip(-1).float() / 255).abs().max() <= TOL
    assert torch.equal(inputs, targets)


def test_colour_jitter_is_shared_by_inputs_and_targets() -> None:
    faces, masks = _batch(n=8)
    spec = AugmentSpec(rotation=0, scale=0, shift=0, flip=0, warp=0, color_l=0.15, color_ab=8)
    inputs, targets, target_masks = _run(spec, faces, masks)
    plain = faces.float() / 255
    assert torch.equal(inputs, targets)
    # Colour changes per sample, geometry does not.
    per_sample = (targets - plain).abs().mean(dim=(1, 2, 3))
    assert (per_sample > 2 / 255).all()
    assert (target_masks - masks.float() / 255).abs().max() <= TOL


def test_colour_with_warp_keeps_the_same_colour() -> None:
    faces, masks = _batch(n=8)
    warp_only = AugmentSpec(rotation=0, scale=0, shift=0, flip=0, warp=0.06, color_l=0, color_ab=0)
    colour_warp = AugmentSpec(rotation=0, scale=0, shift=0, flip=0, warp=0.06)
    plain_in, plain_out, _ = _run(warp_only, faces, masks, seed=4)
    inputs, targets, _ = _run(colour_warp, faces, masks, seed=4)
    # Same draws -> same warp; the colour shift each sample got must match in and out.
    shift_in = (inputs - plain_in).mean(dim=(2, 3))
    shift_out = (targets - plain_out).mean(dim=(2, 3))
    assert shift_out.abs().max() > 0.02
    assert (shift_in - shift_out).abs().max() < 0.005


def test_runs_under_bf16_autocast_and_stays_float32() -> None:
    faces, masks = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = _run(AugmentSpec(), faces, masks)
    _check_outputs(faces, outputs)


def test_rejects_bad_specs_and_shapes() -> None:
    with pytest.raises(BadInputError):
        AugmentSpec(flip=1.5)
    with pytest.raises(BadInputError):
        AugmentSpec(warp_grid=2)
    faces, masks = _batch()
    with pytest.raises(ValueError):
        Augmenter(AugmentSpec(), SIZE)(faces, masks[:, :1], _gen(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_contract() -> None:
    faces, masks = _batch(device="cuda")
    outputs = _run(AugmentSpec(), faces, masks)
    _check_outputs(faces, outputs)
    again = _run(AugmentSpec(), faces, masks)
    assert torch.equal(outputs[0], again[0])
