"""Occlusion models for convert's tests, written with the real store and checkpoint code.

`colour_key_net` is a MaskNet whose weights are set by hand: it calls a pixel "not face"
exactly when its colour is within a few levels of one key colour, so a test knows what it
predicts (a briefly trained network would make the test as flaky as its training).
Import as `from convertmasks import ...` (tests/ is on sys.path).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.train.checkpoint import save_checkpoint
from engine.train.families.occlusion.network import MaskNet
from engine.train.registry import CropGeometry, settings_model
from engine.train.store import ModelPaths, create_model
from engine.workspace import Workspace


def save_occlusion_model(
    ws: Workspace,
    name: str,
    facesets: tuple[str, ...],
    net: MaskNet | None = None,
    coverage: float = 0.75,
    crop_size: int = 64,
) -> str:
    """Write occlusion model `name` (model.toml keyed by `facesets`, a checkpoint) into `ws`."""
    net = net or MaskNet(32, 4)
    geometry = {f: CropGeometry(coverage=coverage, crop_size=crop_size) for f in facesets}
    preset = "occlusion-small" if net.size <= 128 else "occlusion"
    settings = settings_model("occlusion")(
        preset=preset, size=net.size, width=net.width, inputs=list(facesets), geometry=geometry
    )
    paths = ModelPaths(ws.model_dir(name))
    create_model(settings, paths)
    optimizer = torch.optim.Adam(net.parameters())
    save_checkpoint(paths.checkpoint, net, optimizer, {}, {"step": 1})
    return name


def _identity(conv: torch.nn.Conv2d, pairs: list[tuple[int, int]]) -> None:
    """Centre taps only: output channel o copies input channel i, for each (o, i)."""
    for out, inp in pairs:
        conv.weight[out, inp, 1, 1] = 1.0


def _plain_norm(norm: torch.nn.BatchNorm2d, bias: torch.Tensor | None = None) -> None:
    """Batch norm that (in eval mode) passes its input through, plus `bias`."""
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0)
    norm.weight.fill_(float(np.sqrt(1.0 + norm.eps)))
    norm.bias.zero_()
    if bias is not None:
        norm.bias[: len(bias)] = bias


@torch.no_grad()
def colour_key_net(key: tuple[int, int, int], size: int = 64, tolerance: int = 6) -> MaskNet:
    """A MaskNet whose logit is high (face) unless a pixel's RGB is within `tolerance`
    levels of `key` in every channel; there it is -8 (sigmoid 0.0003: covered).

    Only the first level and the last up block carry anything: six features
    relu(+-(x - key) - tolerance) per pixel, summed by the head.
    """
    net = MaskNet(size, 8)  # level 0 holds the six features
    for p in net.parameters():
        p.zero_()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _plain_norm(m)
    # The network sees 2x - 1: levels map to [-1, 1].
    centre = torch.tensor([2 * k / 255 - 1 for k in key])
    slack = 2 * tolerance / 255
    first = net.down[0]
    for c in range(3):
        first[0].weight[2 * c, c, 1, 1] = 1.0
        first[0].weight[2 * c + 1, c, 1, 1] = -1.0
    offsets = torch.stack([-centre - slack, centre - slack], dim=1).reshape(-1)
    _plain_norm(first[1], offsets)
    _identity(first[3], [(k, k) for k in range(6)])
    # The last up block sees [upsampled deeper features (all zero), level 0's skip].
    last = net.up[-1]
    deeper = last[0].weight.shape[1] - net.width
    _identity(last[0], [(k, deeper + k) for k in range(6)])
    _identity(last[3], [(k, k) for k in range(6)])
    net.head.weight[0, :6, 0, 0] = 400.0  # sure it is face three levels past the tolerance
    net.head.bias.fill_(-8.0)
    return net.eval()
