"""FOMM's three networks, from the paper (Siarohin et al., NeurIPS 2019, sections 3.1-3.3).

- KPDetector: an hourglass turns the (downscaled) frame into one heatmap per keypoint;
  a softmax with a low temperature and a soft-argmax over a [-1, 1] grid give each
  keypoint's position, and a second head, weighted by the same heatmap, its 2x2 Jacobian
  (the local affine motion around it).
- DenseMotionNetwork: from the keypoints of source and driving frame, K+1 candidate
  backward warps (one per keypoint's local affine motion, plus the identity for the
  background); an hourglass over the heatmap differences and the source warped by each
  candidate predicts how to blend them per pixel (`mask`) and what the source cannot
  show (`occlusion`).
- OcclusionAwareGenerator: encodes the source, warps its features with the blended
  motion, dims them where occluded, and decodes the frame (Johnson-style with residual
  blocks in the bottleneck).

Module and parameter names follow the authors' code (AliaksandrSiarohin/first-order-model),
so the `generator` and `kp_detector` state dicts of their checkpoints load unchanged.
Their checkpoints were trained with torch 1.0, whose grid_sample aligned corners (the
grid's -1 and 1 are pixel centres), so warps here say align_corners=True.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# The authors' fixed hyper-parameters (not in vox-256.yaml): the keypoint softmax's
# temperature and the variance of the gaussians that stand for keypoints in the dense motion.
TEMPERATURE = 0.1
KP_VARIANCE = 0.01
CHANNELS = 3

KP = dict[str, torch.Tensor]  # {"value": (B,K,2), "jacobian": (B,K,2,2)}


def coordinate_grid(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """(h, w, 2) of (x, y) in [-1, 1], x to the right, y down, as grid_sample reads it."""
    x = torch.linspace(-1.0, 1.0, w, device=device)
    y = torch.linspace(-1.0, 1.0, h, device=device)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def kp_gaussians(value: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, K, 2) keypoints → (B, K, h, w) unnormalised gaussians centred on them."""
    grid = coordinate_grid(h, w, value.device)
    diff = grid[None, None] - value[:, :, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / KP_VARIANCE)


# ---- blocks -----------------------------------------------------------------------------


class SameBlock(nn.Module):
    """conv → batch norm → ReLU at the same resolution."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm2d(cout, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock(SameBlock):
    """A SameBlock, then 2x2 average pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class UpBlock(SameBlock):
    """Nearest 2x upsampling, then a SameBlock."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0))


class ResBlock(nn.Module):
    """Pre-activation residual block (norm → ReLU → conv, twice), same width."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(features, affine=True)
        self.norm2 = nn.BatchNorm2d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class Encoder(nn.Module):
    def __init__(self, expansion: int, cin: int, blocks: int, max_features: int) -> None:
        super().__init__()
        width = [cin] + [min(max_features, expansion * 2 ** (i + 1)) for i in range(blocks)]
        self.down_blocks = nn.ModuleList(DownBlock(width[i], width[i + 1]) for i in range(blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, expansion: int, cin: int, blocks: int, max_features: int) -> None:
        super().__init__()
        ups = []
        for i in reversed(range(blocks)):
            # Every block but the deepest also takes the encoder's skip, as wide as its input.
            widen = 1 if i == blocks - 1 else 2
            ups.append(
                UpBlock(
                    widen * min(max_features, expansion * 2 ** (i + 1)),
                    min(max_features, expansion * 2**i),
                )
            )
        self.up_blocks = nn.ModuleList(ups)
        self.out_features = expansion + cin

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net-like: down blocks, then up blocks each joined with the matching skip.
    The output has `expansion + cin` channels (the last up block's and the input's)."""

    def __init__(self, expansion: int, cin: int, blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = Encoder(expansion, cin, blocks, max_features)
        self.decoder = Decoder(expansion, cin, blocks, max_features)
        self.out_features = self.decoder.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur, then nearest downscaling: no aliasing when the networks look at a
    smaller frame. The kernel is a buffer named `weight`, as in the authors' state dicts."""

    weight: torch.Tensor

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1  # odd: the same padding on both sides
        t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        g = torch.exp(-(t**2) / (2 * sigma**2))
        kernel = torch.outer(g, g)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).contiguous())
        self.scale = scale
        self.pad = size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pad(x, (self.pad,) * 4)
        out = F.conv2d(out, self.weight.to(out.dtype), groups=x.shape[1])
        return F.interpolate(out, scale_factor=(self.scale, self.scale))


# ---- the networks -----------------------------------------------------------------------


class KPDetector(nn.Module):
    """(B, 3, S, S) frames in [0, 1] → keypoints {"value": (B,K,2), "jacobian": (B,K,2,2)}."""

    def __init__(
        self, num_kp: int, expansion: int, max_features: int, blocks: int, scale_factor: float
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(expansion, CHANNELS, blocks, max_features)
        width = self.predictor.out_features
        # Unpadded 7x7 heads, as the authors' (their `pad` is 0 in every published config).
        self.kp = nn.Conv2d(width, num_kp, 7)
        self.jacobian = nn.Conv2d(width, 4 * num_kp, 7)
        # Start every Jacobian at the identity: no local deformation until one is learned.
        nn.init.zeros_(self.jacobian.weight)
        with torch.no_grad():
            self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(num_kp))
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasDownsample(CHANNELS, scale_factor)

    def forward(self, x: torch.Tensor) -> KP:
        if self.scale_factor != 1:
            x = self.down(x)
        features = self.predictor(x)
        # Softmax and soft-argmax in fp32: a 0.1 temperature overflows half precision.
        logits = self.kp(features).float()
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.flatten(2) / TEMPERATURE, dim=2).reshape(b, k, h, w)
        value = (heatmap[..., None] * coordinate_grid(h, w, x.device)).sum(dim=(2, 3))
        maps = self.jacobian(features).float().reshape(b, k, 4, h, w)
        jacobian = (heatmap[:, :, None] * maps).sum(dim=(3, 4)).reshape(b, k, 2, 2)
        return {"value": value, "jacobian": jacobian}


class DenseMotionNetwork(nn.Module):
    """Blends the keypoints' local motions into one backward warp, plus an occlusion map."""

    def __init__(
        self,
        num_kp: int,
        expansion: int,
        max_features: int,
        blocks: int,
        scale_factor: float,
        occlusion: bool,
    ) -> None:
        super().__init__()
        # Per candidate motion (K keypoints + background): its heatmap difference and the
        # source warped by it.
        cin = (num_kp + 1) * (CHANNELS + 1)
        self.hourglass = Hourglass(expansion, cin, blocks, max_features)
        width = self.hourglass.out_features
        self.mask = nn.Conv2d(width, num_kp + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(width, 1, 7, padding=3) if occlusion else None
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasDownsample(CHANNELS, scale_factor)

    def sparse_motions(self, h: int, w: int, kp_source: KP, kp_driving: KP) -> torch.Tensor:
        """(B, K+1, h, w, 2): for each driving pixel z, where it comes from in the source
        under each keypoint's first-order motion, T(z) = s_k + J_s J_d^-1 (z - d_k)
        (eq. 4), and under the identity (background)."""
        src, drv = kp_source["value"].float(), kp_driving["value"].float()
        b = src.shape[0]
        grid = coordinate_grid(h, w, src.device)
        offset = grid[None, None] - drv[:, :, None, None, :]  # (B, K, h, w, 2)
        jac = kp_source["jacobian"].float() @ torch.linalg.inv(kp_driving["jacobian"].float())
        motion = torch.einsum("bkij,bkhwj->bkhwi", jac, offset) + src[:, :, None, None, :]
        background = grid[None, None].expand(b, 1, h, w, 2)
        return torch.cat([background, motion], dim=1)

    def forward(self, source: torch.Tensor, kp_source: KP, kp_driving: KP) -> dict[str, Any]:
        if self.scale_factor != 1:
            source = self.down(source)
        b, c, h, w = source.shape
        k1 = self.num_kp + 1
        # Eq. 6: where the driving keypoints are minus where the source's are; zeros for
        # the background.
        heat = kp_gaussians(kp_driving["value"].float(), h, w) - kp_gaussians(
            kp_source["value"].float(), h, w
        )
        heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1)[:, :, None]
        motions = self.sparse_motions(h, w, kp_source, kp_driving)
        repeated = source.float()[:, None].expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = F.grid_sample(
            repeated, motions.reshape(b * k1, h, w, 2), align_corners=True
        ).reshape(b, k1, c, h, w)
        features = self.hourglass(torch.cat([heat, deformed], dim=2).reshape(b, -1, h, w))
        mask = F.softmax(self.mask(features).float(), dim=1)
        deformation = (mask[..., None] * motions).sum(dim=1)  # (B, h, w, 2)
        out: dict[str, Any] = {
            "mask": mask,
            "sparse_deformed": deformed,
            "deformation": deformation,
        }
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features).float())
        return out


class OcclusionAwareGenerator(nn.Module):
    """The source, warped to the driving frame's pose and inpainted where occluded."""

    def __init__(
        self,
        num_kp: int,
        expansion: int,
        max_features: int,
        down_blocks: int,
        bottleneck_blocks: int,
        occlusion: bool,
        dense_motion: dict[str, Any],
    ) -> None:
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, occlusion=occlusion, **dense_motion
        )
        self.first = SameBlock(CHANNELS, expansion, kernel=7)

        def width(i: int) -> int:
            return min(max_features, expansion * 2**i)

        self.down_blocks = nn.ModuleList(
            DownBlock(width(i), width(i + 1)) for i in range(down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock(width(down_blocks - i), width(down_blocks - i - 1)) for i in range(down_blocks)
        )
        self.bottleneck = nn.Sequential()
        for i in range(bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock(width(down_blocks)))
        self.final = nn.Conv2d(expansion, CHANNELS, 7, padding=3)

    @staticmethod
    def _warp(x: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(
                deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear"
            ).permute(0, 2, 3, 1)
        # In fp32 even under autocast: half-precision grid coordinates are off by 1/16 px.
        return F.grid_sample(x.float(), deformation.float(), align_corners=True)

    def forward(self, source: torch.Tensor, kp_source: KP, kp_driving: KP) -> dict[str, Any]:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        motion = self.dense_motion_network(source, kp_source=kp_source, kp_driving=kp_driving)
        result: dict[str, Any] = {
            "mask": motion["mask"],
            "sparse_deformed": motion["sparse_deformed"],
        }
        deformation = motion["deformation"]
        out = self._warp(out, deformation)
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            result["occlusion_map"] = occlusion
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
            out = out * occlusion
        result["deformed"] = self._warp(source, deformation)
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        result["prediction"] = torch.sigmoid(self.final(out))
        return result


class FommNetworks(nn.Module):
    """Both trained networks; its state dict is `kp_detector.*` and `generator.*`, the two
    state dicts of the authors' checkpoints under their own names."""

    def __init__(self, kp_detector: KPDetector, generator: OcclusionAwareGenerator) -> None:
        super().__init__()
        self.kp_detector = kp_detector
        self.generator = generator

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> dict[str, Any]:
        """Reconstruct `driving` from `source` (training): the generator's outputs with
        both frames' keypoints as "kp_source" and "kp_driving"."""
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        out = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        return {**out, "kp_source": kp_source, "kp_driving": kp_driving}


def build_networks(settings: Any) -> FommNetworks:
    """The networks a fomm model's settings describe (`settings_model("fomm")`)."""
    s = settings
    kp = KPDetector(
        num_kp=s.num_kp,
        expansion=s.kp_block_expansion,
        max_features=s.kp_max_features,
        blocks=s.kp_num_blocks,
        scale_factor=s.scale_factor,
    )
    generator = OcclusionAwareGenerator(
        num_kp=s.num_kp,
        expansion=s.gen_block_expansion,
        max_features=s.gen_max_features,
        down_blocks=s.num_down_blocks,
        bottleneck_blocks=s.num_bottleneck_blocks,
        occlusion=s.occlusion,
        dense_motion={
            "expansion": s.dm_block_expansion,
            "max_features": s.dm_max_features,
            "blocks": s.dm_num_blocks,
            "scale_factor": s.scale_factor,
        },
    )
    return FommNetworks(kp, generator)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
