"""FOMM's networks: the authors' state-dict layout, and the geometry of keypoints and warps."""

from __future__ import annotations

import pytest
import torch
from fomm_authors import fomm_settings, generator_shapes, kp_detector_shapes
from torch import nn

from engine.train.families.fomm.networks import (
    AntiAliasDownsample,
    KPDetector,
    build_networks,
    coordinate_grid,
)


@pytest.fixture(scope="module")
def vox_layout() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        networks = build_networks(fomm_settings("vox-256"))
    return {k: tuple(v.shape) for k, v in networks.state_dict().items()}


@pytest.fixture(scope="module")
def small() -> nn.Module:
    torch.manual_seed(0)
    return build_networks(fomm_settings("fomm-small")).eval()


@pytest.mark.parametrize(
    ("part", "shapes"), [("kp_detector", kp_detector_shapes), ("generator", generator_shapes)]
)
def test_vox_256_has_the_authors_names_and_shapes(vox_layout, part, shapes):
    ours = {k.split(".", 1)[1]: v for k, v in vox_layout.items() if k.startswith(f"{part}.")}
    theirs = shapes()
    assert sorted(ours.keys() - theirs.keys()) == []
    assert sorted(theirs.keys() - ours.keys()) == []
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}


def test_vox_256_landmark_shapes(vox_layout):
    """A few shapes that follow from the published config alone."""
    assert vox_layout["kp_detector.kp.weight"] == (10, 35, 7, 7)
    assert vox_layout["kp_detector.jacobian.weight"] == (40, 35, 7, 7)
    assert vox_layout["kp_detector.down.weight"] == (3, 1, 13, 13)
    dm = "generator.dense_motion_network"
    assert vox_layout[f"{dm}.hourglass.encoder.down_blocks.0.conv.weight"] == (128, 44, 3, 3)
    assert vox_layout[f"{dm}.hourglass.decoder.up_blocks.0.conv.weight"] == (1024, 1024, 3, 3)
    assert vox_layout[f"{dm}.mask.weight"] == (11, 108, 7, 7)
    assert vox_layout[f"{dm}.occlusion.weight"] == (1, 108, 7, 7)
    assert vox_layout["generator.bottleneck.r5.conv2.weight"] == (256, 256, 3, 3)
    assert vox_layout["generator.up_blocks.0.conv.weight"] == (128, 256, 3, 3)
    assert vox_layout["generator.final.weight"] == (3, 64, 7, 7)
    assert vox_layout["generator.first.norm.num_batches_tracked"] == ()


def test_no_occlusion_map_without_occlusion():
    with torch.device("meta"):
        networks = build_networks(fomm_settings("fomm-small", occlusion=False))
    assert not any("occlusion" in k for k in networks.state_dict())


def test_small_preset_outputs(small):
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        out = small(x, x.flip(0))
    assert out["prediction"].shape == (2, 3, 64, 64)
    assert out["deformed"].shape == (2, 3, 64, 64)
    assert out["occlusion_map"].shape == (2, 1, 32, 32)  # at scale factor 0.5
    assert out["mask"].shape == (2, 11, 32, 32)
    assert out["sparse_deformed"].shape == (2, 11, 3, 32, 32)
    assert out["kp_source"]["value"].shape == (2, 10, 2)
    assert out["kp_source"]["jacobian"].shape == (2, 10, 2, 2)
    assert torch.allclose(out["mask"].sum(1), torch.ones(2, 32, 32), atol=1e-5)
    assert out["prediction"].min() >= 0 and out["prediction"].max() <= 1


def test_new_jacobians_are_the_identity(small):
    with torch.inference_mode():
        kp = small.kp_detector(torch.rand(3, 3, 64, 64))
    assert torch.allclose(kp["jacobian"], torch.eye(2).expand(3, 10, 2, 2), atol=1e-5)
    assert kp["value"].abs().max() <= 1


class _Peaks(nn.Module):
    """Stands in for the `kp` head: a sharp logit peak at given (row, col) per keypoint."""

    def __init__(self, peaks: list[tuple[int, int]], size: int) -> None:
        super().__init__()
        self.peaks, self.size = peaks, size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(features.shape[0], len(self.peaks), self.size, self.size)
        for k, (row, col) in enumerate(self.peaks):
            logits[:, k, row, col] = 10.0
        return logits


def test_keypoints_are_grid_sample_coordinates():
    """x to the right, y down, -1 and 1 on the outer pixel centres of the heatmap."""
    det = KPDetector(num_kp=3, expansion=8, max_features=16, blocks=2, scale_factor=1).eval()
    size = 32 - 6  # the unpadded 7x7 head
    det.kp = _Peaks([(0, 0), (0, size - 1), (size // 2, 3)], size)
    with torch.inference_mode():
        value = det(torch.rand(1, 3, 32, 32))["value"][0]
    want = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [2 * 3 / (size - 1) - 1, 2 * 13 / 25 - 1]])
    assert torch.allclose(value, want, atol=1e-3)


def test_anti_alias_keeps_a_flat_image_flat():
    down = AntiAliasDownsample(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)
    assert torch.allclose(down.weight.sum(dim=(1, 2, 3)), torch.ones(3))
    out = down(torch.full((1, 3, 64, 64), 0.5))
    assert out.shape == (1, 3, 16, 16)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.full_like(out[..., 2:-2, 2:-2], 0.5))


def test_keypoints_moving_right_move_the_source_right(small):
    """Driving keypoints shifted by t: each keypoint's motion T(z) = z - t, so the warped
    source shows the source's content t further on (backward warping, eq. 4)."""
    dm = small.generator.dense_motion_network
    with torch.no_grad():
        # Every pixel follows the keypoints, none the background.
        dm.mask.weight.zero_()
        dm.mask.bias.copy_(torch.tensor([-50.0] + [0.0] * 10))
    source = torch.zeros(1, 3, 64, 64)
    source[..., 20:30, 10:20] = 1.0  # a square
    kp_source = {"value": torch.rand(1, 10, 2) - 0.5, "jacobian": torch.eye(2).repeat(1, 10, 1, 1)}
    shift = torch.tensor([16 * 2 / 63, 0.0])  # 16 px to the right
    kp_driving = {"value": kp_source["value"] + shift, "jacobian": kp_source["jacobian"]}
    with torch.inference_mode():
        out = small.generator(source, kp_source=kp_source, kp_driving=kp_driving)
    deformed = out["deformed"][0, 0]
    assert deformed[22:28, 28:34].min() > 0.9  # the square, 16 px to the right
    assert deformed[22:28, 12:18].max() < 0.1  # and no longer where it was


def test_same_keypoints_leave_the_source_as_it_is():
    """Source and driving keypoints equal: every candidate motion is the identity, whatever
    the networks' weights, so the warped source is the source. (At scale factor 1: a motion
    field upsampled from a smaller grid is only nearly the identity near the borders.)"""
    torch.manual_seed(1)
    networks = build_networks(fomm_settings("fomm-small", scale_factor=1.0)).eval()
    source = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        kp = networks.kp_detector(source)
        out = networks.generator(source, kp_source=kp, kp_driving=kp)
    assert torch.allclose(out["deformed"], source, atol=1e-4)


def test_coordinate_grid_corners():
    grid = coordinate_grid(3, 5)
    assert grid.shape == (3, 5, 2)
    assert grid[0, 0].tolist() == [-1.0, -1.0]
    assert grid[2, 4].tolist() == [1.0, 1.0]
    assert grid[1, 2].tolist() == [0.0, 0.0]


def test_mixed_precision_keeps_keypoints_and_motion_in_fp32(small):
    """Under autocast (bf16 on the CPU here, fp16 on CUDA) the convolutions run in half
    precision; keypoints, Jacobians and the warps stay fp32, and the frame stays close."""
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        full = small(x, x.flip(0))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = small(x, x.flip(0))
    assert half["kp_source"]["value"].dtype == torch.float32
    assert half["kp_source"]["jacobian"].dtype == torch.float32
    assert half["deformed"].dtype == torch.float32
    assert torch.isfinite(half["prediction"]).all()
    assert (half["prediction"].float() - full["prediction"]).abs().mean() < 0.05
