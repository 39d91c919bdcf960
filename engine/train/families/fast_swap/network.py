"""Fast Face-swap's transformation network (Korshunova et al. 2017, after Ulyanov et al.'s
texture networks).

Multi-scale: for `scales` branches the input is area-downsampled to size / 2**k for
k = scales-1 .. 0, each branch runs a conv block, and the branches are joined from the
coarsest up: the running result is upsampled x2 (nearest), batch-normalised, concatenated
with the next finer branch's (batch-normalised) output and passed through a conv block
as wide as `width` times the branches joined so far. A 1x1 conv to 3 channels and a
sigmoid end it. A 128 px network has five branches at 8, 16, 32, 64 and 128 px.

Everything is convs, batch norms, pools and concatenations over whole batches, so the
network runs as well in channels-last layout as in the default one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The coarsest branch must still have a centre for its 3x3 convs to see.
MIN_BRANCH_PX = 4
# texture_nets' slope: a nearly plain ReLU that lets a little gradient through below zero.
LEAKY_SLOPE = 0.01


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv, BN, LeakyReLU; 3x3 conv, BN, LeakyReLU; 1x1 conv, BN, LeakyReLU (zero padding)."""
    layers: list[nn.Module] = []
    for kernel, c in ((3, cin), (3, cout), (1, cout)):
        layers += [
            # No conv bias: the batch norm right after it has its own.
            nn.Conv2d(c, cout, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
    return nn.Sequential(*layers)


def check_geometry(size: int, scales: int, width: int) -> None:
    """Refuse (one line) a size the branches cannot halve, or a coarsest branch too small."""
    if scales < 1 or width < 1:
        raise ValueError(f"scales ({scales}) and width ({width}) must be at least 1")
    factor = 2 ** (scales - 1)
    if size % factor:
        raise ValueError(
            f"size {size} px does not divide by 2**(scales-1) = {factor} ({scales} branches)"
        )
    if size // factor < MIN_BRANCH_PX:
        raise ValueError(
            f"size {size} px with {scales} branches leaves a {size // factor} px coarsest "
            f"branch; it needs at least {MIN_BRANCH_PX} px"
        )


class TransformNet(nn.Module):
    """(B, 3, S, S) faces in [0, 1] → (B, 3, S, S) in [0, 1], S = `size`."""

    def __init__(self, size: int, scales: int, width: int) -> None:
        super().__init__()
        check_geometry(size, scales, width)
        self.size = size
        self.scales = scales
        self.width = width
        # Index 0 is the coarsest branch (size / 2**(scales-1) px), the last one full size.
        self.branches = nn.ModuleList(conv_block(3, width) for _ in range(scales))
        # Join k (k = 1 .. scales-1) takes the running result (width*k channels) and
        # branch k (width channels); both are batch-normalised before they meet.
        self.norm_running = nn.ModuleList(nn.BatchNorm2d(width * k) for k in range(1, scales))
        self.norm_branch = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(1, scales))
        self.joins = nn.ModuleList(
            conv_block(width * (k + 1), width * (k + 1)) for k in range(1, scales)
        )
        self.head = nn.Conv2d(width * scales, 3, kernel_size=1)

    def _branch_input(self, x: torch.Tensor, k: int) -> torch.Tensor:
        factor = 2 ** (self.scales - 1 - k)
        # Area downsampling by a whole factor is a plain average over factor x factor cells.
        return x if factor == 1 else F.avg_pool2d(x, factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"the network works at {self.size} px; it was given {tuple(x.shape[-2:])}"
            )
        running = self.branches[0](self._branch_input(x, 0))
        for k in range(1, self.scales):
            branch = self.branches[k](self._branch_input(x, k))
            up = F.interpolate(running, scale_factor=2.0, mode="nearest")
            joined = torch.cat(
                [self.norm_running[k - 1](up), self.norm_branch[k - 1](branch)], dim=1
            )
            running = self.joins[k - 1](joined)
        return torch.sigmoid(self.head(running))
