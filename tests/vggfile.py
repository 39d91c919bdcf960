"""A randomly initialised VGG-19 saved as torchvision saves its ImageNet weights.

The real file cannot be downloaded here; this one has the same keys and shapes
(`features.*`, plus a classifier key the loader must ignore) under the same name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.train.vgg import WEIGHTS_FILE, full_features


def random_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's vgg19() state dict layout with its own initialisation (He, fan-out), so
    that activations keep their scale through sixteen layers as a trained VGG's do."""
    torch.manual_seed(seed)
    features = full_features()
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def write_random_vgg(folder: Path, seed: int = 0) -> Path:
    """`folder`/vgg19-dcbb9e9d.pth holding random_vgg_state(seed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WEIGHTS_FILE
    torch.save(random_vgg_state(seed), path)
    return path


def torch_home_with_vgg(root: Path, seed: int = 0) -> Path:
    """A TORCH_HOME whose hub cache holds the file (hub/checkpoints/vgg19-dcbb9e9d.pth)."""
    write_random_vgg(root / "hub" / "checkpoints", seed)
    return root


@contextlib.contextmanager
def patched_torch_home(root: Path, seed: int = 0) -> Iterator[Path]:
    """TORCH_HOME set to torch_home_with_vgg(root) while inside (torch hub's own set_dir()
    cleared, since it would hide TORCH_HOME)."""
    import torch.hub

    home = torch_home_with_vgg(root, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        mp.setattr(torch.hub, "_hub_dir", None)
        yield home
