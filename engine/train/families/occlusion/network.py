"""The occlusion mask network: a small U-Net over an aligned face.

Four levels (S, S/2, S/4, S/8) and a bottleneck at S/16, each a pair of 3x3 conv,
batch norm, ReLU, doubling the filters per level; the way up upsamples
(bilinear), joins the level's skip connection and runs the same pair. A 1x1 conv
gives one logit per pixel: how sure it is that the pixel is the face itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 4


def _pair(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        # No conv bias: the batch norm after it has one.
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def check_size(size: int) -> None:
    """Refuse (one line) a size the levels cannot halve evenly."""
    factor = 2**LEVELS
    if size % factor or size < 2 * factor:
        raise ValueError(
            f"occlusion size {size} px must be a multiple of {factor} and at least {2 * factor}"
        )


class MaskNet(nn.Module):
    """(N, 3, S, S) faces in [0, 1] → (N, 1, S, S) logits (sigmoid: P(pixel is face))."""

    def __init__(self, size: int, width: int) -> None:
        super().__init__()
        check_size(size)
        self.size = size
        self.width = width
        widths = [width * 2**k for k in range(LEVELS + 1)]
        self.down = nn.ModuleList(
            _pair(3 if k == 0 else widths[k - 1], widths[k]) for k in range(LEVELS)
        )
        self.bottom = _pair(widths[LEVELS - 1], widths[LEVELS])
        self.up = nn.ModuleList(
            _pair(widths[k + 1] + widths[k], widths[k]) for k in reversed(range(LEVELS))
        )
        self.head = nn.Conv2d(widths[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centred inputs train faster than [0, 1] ones.
        x = x * 2.0 - 1.0
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
