"""The high-resolution family (128-256 px) in DeepFaceLab's two layouts.

Both share the encoder: four 5x5 halvings (e, 2e, 4e, 8e filters) to S/16 with
residual blocks on the last two stages. A dense "inter" squeezes that map
through `bottleneck` units, redraws it at S/16 and upscales once to S/8.
Decoders upscale three times to S with a residual block after each, then draw
RGB and the mask.

- DF: one inter (shared), one decoder per identity. Identity lives in the decoders.
- LIAE: one decoder (shared), two inters. inter_ab sees both people, inter_b only B;
  A is drawn from [ab, ab] and B from [b, ab], so the swap A→B is [b(A), ab(A)].
  Identity lives in the code, which tends to keep A's expression and light better.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.train.models.base import ArchSpec, SharedEncoderModel, SwapModel
from engine.train.models.blocks import DenseCode, Heads, ResBlock, conv_down, upscale


def hd_encoder(spec: ArchSpec) -> nn.Sequential:
    e = spec.enc_dims
    return nn.Sequential(
        conv_down(3, e),
        conv_down(e, e * 2),
        conv_down(e * 2, e * 4),
        ResBlock(e * 4),
        conv_down(e * 4, e * 8),
        ResBlock(e * 8),
    )


def hd_inter(spec: ArchSpec, out_ch: int) -> nn.Sequential:
    """Dense bottleneck at S/16, then one upscale to S/8 with `out_ch` channels."""
    res = spec.size // 16
    return nn.Sequential(
        DenseCode(spec.enc_dims * 8, res, spec.bottleneck, out_ch, res),
        upscale(out_ch, out_ch),
    )


class HDDecoder(nn.Module):
    """S/8 code to an S face: three upscales (8d, 4d, 2d) each followed by a ResBlock."""

    def __init__(self, spec: ArchSpec, code_ch: int) -> None:
        super().__init__()
        d = spec.dec_dims
        self.body = nn.Sequential(
            upscale(code_ch, d * 8),
            ResBlock(d * 8),
            upscale(d * 8, d * 4),
            ResBlock(d * 4),
            upscale(d * 4, d * 2),
            ResBlock(d * 2),
        )
        self.heads = Heads(d * 2, kernel=3, learn_mask=spec.learn_mask)

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.heads(self.body(code))


class HDModelDF(SharedEncoderModel):
    """DF layout: shared encoder + inter, a decoder per identity."""

    def __init__(self, spec: ArchSpec) -> None:
        code_ch = spec.bottleneck
        encoder = nn.Sequential(hd_encoder(spec), hd_inter(spec, code_ch))
        super().__init__(spec, encoder, {name: HDDecoder(spec, code_ch) for name in ("a", "b")})


class HDModelLIAE(SwapModel):
    """LIAE layout: shared encoder, inters `inter_ab` and `inter_b`, one shared decoder."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(spec)
        half = spec.bottleneck // 2
        self.encoder = hd_encoder(spec)
        self.inter_ab = hd_inter(spec, half)
        self.inter_b = hd_inter(spec, half)
        self.decoder = HDDecoder(spec, half * 2)

    def _code(self, feats: Tensor, identity: str) -> Tensor:
        ab = self.inter_ab(feats)
        first = ab if identity == "a" else self.inter_b(feats)
        return torch.cat([first, ab], dim=1)

    def forward(self, x: Tensor, identity: str) -> tuple[Tensor, Tensor | None]:
        self._check_identity(identity)
        return self.decoder(self._code(self.encoder(x), identity))

    def forward_pair(
        self, xa: Tensor, xb: Tensor
    ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        n = len(xa)
        feats = self.encoder(torch.cat([xa, xb]))
        ab = self.inter_ab(feats)
        b = self.inter_b(feats[n:])
        # One decoder pass over both codes: A's [ab, ab] then B's [b, ab].
        code = torch.cat([torch.cat([ab[:n], ab[:n]], 1), torch.cat([b, ab[n:]], 1)])
        face, mask = self.decoder(code)
        face_a, face_b = face[:n], face[n:]
        mask_a, mask_b = (None, None) if mask is None else (mask[:n], mask[n:])
        return face_a, mask_a, face_b, mask_b
