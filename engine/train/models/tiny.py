"""The tiny preset: the original's shape, narrow and cheap, with a learned mask.

Built so a training step at batch 8 per side takes about 50 ms on two CPU cores
(68 M multiply-adds per face forward, against the original's 1.9 G), so tests
and the demo can train it for real. 3x3 kernels, a decoder that halves its
width each time it doubles the size, and sub-pixel heads keep it cheap.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.train.models.base import ArchSpec, SharedEncoderModel
from engine.train.models.blocks import DenseCode, SubPixelHeads, conv_down, upscale


def tiny_encoder(spec: ArchSpec) -> nn.Sequential:
    """Four 3x3 halvings (e..8e) to S/16, dense bottleneck, one upscale to a 4d map at S/8."""
    e, d, res = spec.enc_dims, spec.dec_dims, spec.size // 16
    return nn.Sequential(
        conv_down(3, e, kernel=3),
        conv_down(e, e * 2, kernel=3),
        conv_down(e * 2, e * 4, kernel=3),
        conv_down(e * 4, e * 8, kernel=3),
        DenseCode(e * 8, res, spec.bottleneck, d * 4, res),
        upscale(d * 4, d * 4),
    )


class TinyDecoder(nn.Module):
    """Two upscales (2d, d) to S/2, then heads drawn at S/2 and pixel-shuffled to S.

    Sub-pixel heads skip a full-resolution stage: on CPU the narrow convs at
    full size cost more than the rest of the decoder.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        d = spec.dec_dims
        self.body = nn.Sequential(upscale(d * 4, d * 2), upscale(d * 2, d))
        self.heads = SubPixelHeads(d, learn_mask=spec.learn_mask)

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.heads(self.body(code))


class TinyModel(SharedEncoderModel):
    """Narrow original-shaped autoencoder with masks (2.5 M parameters at the defaults)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(
            spec,
            tiny_encoder(spec),
            {name: TinyDecoder(spec) for name in ("a", "b")},
        )
