"""faceswap's "original" model at 64 px (about 82 M parameters), and its shape for reuse.

Encoder: four 5x5 strided convs (128..1024 filters) to 4x4, a 1024-wide dense
bottleneck, back to 4x4x1024 and one upscale to 8x8x512. Each decoder: three
upscales (256, 128, 64) and a 5x5 conv to RGB.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.train.models.base import ArchSpec, SharedEncoderModel
from engine.train.models.blocks import DenseCode, Heads, conv_down, upscale


def classic_encoder(spec: ArchSpec) -> nn.Sequential:
    """Four halvings (widths e, 2e, 4e, 8e), dense bottleneck, one upscale to S/8."""
    e, res = spec.enc_dims, spec.size // 16
    return nn.Sequential(
        conv_down(3, e),
        conv_down(e, e * 2),
        conv_down(e * 2, e * 4),
        conv_down(e * 4, e * 8),
        DenseCode(e * 8, res, spec.bottleneck, e * 8, res),
        upscale(e * 8, spec.dec_dims * 8),
    )


class ClassicDecoder(nn.Module):
    """Three upscales (widths 4d, 2d, d) to full size, then the 5x5 heads."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        d = spec.dec_dims
        self.body = nn.Sequential(upscale(d * 8, d * 4), upscale(d * 4, d * 2), upscale(d * 2, d))
        self.heads = Heads(d, kernel=5, learn_mask=spec.learn_mask)

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.heads(self.body(code))


class OriginalModel(SharedEncoderModel):
    """faceswap's original autoencoder; masks only if the spec asks for them."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(
            spec,
            classic_encoder(spec),
            {name: ClassicDecoder(spec) for name in ("a", "b")},
        )
