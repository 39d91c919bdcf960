"""A checkpoint laid out as the authors' vox-cpk.pth.tar, with random weights.

The published file cannot be downloaded here. Its layout is written out below
from the authors' module constructors and config/vox-256.yaml, independently of
engine/train/families/fomm/networks.py, so that a name or shape that drifts there
fails the import tests instead of agreeing with itself.
"""

from __future__ import annotations

import builtins
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.train.families.fomm import FAMILY
from engine.train.registry import ModelSettingsBase, settings_model

# config/vox-256.yaml of the authors' code.
VOX = {
    "num_kp": 10,
    "kp": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5},
    "dm": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5},
    "gen": {"block_expansion": 64, "max_features": 512, "down": 2, "bottleneck": 6},
    "scale_factor": 0.25,
}

# swapdeck's fomm-small preset in the same terms: a small file for the refusal tests.
SMALL = {
    "num_kp": 10,
    "kp": {"block_expansion": 16, "max_features": 128, "num_blocks": 3},
    "dm": {"block_expansion": 16, "max_features": 128, "num_blocks": 3},
    "gen": {"block_expansion": 16, "max_features": 128, "down": 2, "bottleneck": 2},
    "scale_factor": 0.5,
}

Shapes = dict[str, tuple[int, ...]]


def _conv(out: Shapes, name: str, cout: int, cin: int, k: int) -> None:
    out[f"{name}.weight"] = (cout, cin, k, k)
    out[f"{name}.bias"] = (cout,)


def _bn(out: Shapes, name: str, n: int) -> None:
    for key in ("weight", "bias", "running_mean", "running_var"):
        out[f"{name}.{key}"] = (n,)
    out[f"{name}.num_batches_tracked"] = ()


def _hourglass(out: Shapes, name: str, cin: int, be: int, mf: int, blocks: int) -> int:
    for i in range(blocks):
        a = cin if i == 0 else min(mf, be * 2**i)
        b = min(mf, be * 2 ** (i + 1))
        _conv(out, f"{name}.encoder.down_blocks.{i}.conv", b, a, 3)
        _bn(out, f"{name}.encoder.down_blocks.{i}.norm", b)
    for j, i in enumerate(reversed(range(blocks))):
        a = (1 if i == blocks - 1 else 2) * min(mf, be * 2 ** (i + 1))
        b = min(mf, be * 2**i)
        _conv(out, f"{name}.decoder.up_blocks.{j}.conv", b, a, 3)
        _bn(out, f"{name}.decoder.up_blocks.{j}.norm", b)
    return be + cin


def kp_detector_shapes(cfg: dict = VOX) -> Shapes:
    out: Shapes = {}
    k, kp = cfg["num_kp"], cfg["kp"]
    width = _hourglass(
        out, "predictor", 3, kp["block_expansion"], kp["max_features"], kp["num_blocks"]
    )
    _conv(out, "kp", k, width, 7)
    _conv(out, "jacobian", 4 * k, width, 7)
    out["down.weight"] = (3, 1, _blur_size(cfg["scale_factor"]), _blur_size(cfg["scale_factor"]))
    return out


def generator_shapes(cfg: dict = VOX) -> Shapes:
    out: Shapes = {}
    k, dm, g = cfg["num_kp"], cfg["dm"], cfg["gen"]
    width = _hourglass(
        out,
        "dense_motion_network.hourglass",
        (k + 1) * 4,
        dm["block_expansion"],
        dm["max_features"],
        dm["num_blocks"],
    )
    _conv(out, "dense_motion_network.mask", k + 1, width, 7)
    _conv(out, "dense_motion_network.occlusion", 1, width, 7)
    blur = _blur_size(cfg["scale_factor"])
    out["dense_motion_network.down.weight"] = (3, 1, blur, blur)
    be, mf, n = g["block_expansion"], g["max_features"], g["down"]
    _conv(out, "first.conv", be, 3, 7)
    _bn(out, "first.norm", be)
    for i in range(n):
        _conv(out, f"down_blocks.{i}.conv", min(mf, be * 2 ** (i + 1)), min(mf, be * 2**i), 3)
        _bn(out, f"down_blocks.{i}.norm", min(mf, be * 2 ** (i + 1)))
    for i in range(n):
        cin, cout = min(mf, be * 2 ** (n - i)), min(mf, be * 2 ** (n - i - 1))
        _conv(out, f"up_blocks.{i}.conv", cout, cin, 3)
        _bn(out, f"up_blocks.{i}.norm", cout)
    mid = min(mf, be * 2**n)
    for i in range(g["bottleneck"]):
        for part in ("1", "2"):
            _conv(out, f"bottleneck.r{i}.conv{part}", mid, mid, 3)
            _bn(out, f"bottleneck.r{i}.norm{part}", mid)
    _conv(out, "final", 3, be, 7)
    return out


def _blur_size(scale: float) -> int:
    return 2 * round((1 / scale - 1) / 2 * 4) + 1


def _blur(scale: float) -> torch.Tensor:
    sigma = (1 / scale - 1) / 2
    size = _blur_size(scale)
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return (kernel / kernel.sum()).expand(3, 1, size, size).clone()


def random_state(
    shapes: Shapes, gen: torch.Generator, scale_factor: float
) -> OrderedDict[str, torch.Tensor]:
    """Weights that keep activations in range (He-scaled convs, unit batch norms), near-
    identity Jacobians, the real blur kernels; batch norm statistics as a trained net has."""
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000, dtype=torch.long)
        elif name.endswith("down.weight"):
            state[name] = _blur(scale_factor)
        elif name.endswith("running_var"):
            state[name] = 1 + 0.1 * torch.rand(shape, generator=gen)
        elif name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            state[name] = 1 + 0.05 * torch.randn(shape, generator=gen)
        elif name == "jacobian.bias":
            state[name] = torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(shape[0] // 4)
        elif name == "jacobian.weight":
            state[name] = 1e-4 * torch.randn(shape, generator=gen)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[name] = torch.randn(shape, generator=gen) * math.sqrt(1 / fan_in)
        else:
            state[name] = 0.01 * torch.randn(shape, generator=gen)
    # A module's state dict carries its modules' versions; torch.save keeps them.
    state._metadata = OrderedDict({"": {"version": 1}})  # type: ignore[attr-defined]
    return state


def authors_checkpoint(cfg: dict = VOX, seed: int = 0) -> dict:
    """The authors' checkpoint dict: both networks, a discriminator, an optimizer, epoch."""
    gen = torch.Generator().manual_seed(seed)
    scale = cfg["scale_factor"]
    return {
        "generator": random_state(generator_shapes(cfg), gen, scale),
        "kp_detector": random_state(kp_detector_shapes(cfg), gen, scale),
        "discriminator": OrderedDict(
            {
                "discs.1.down_blocks.0.conv.bias": torch.zeros(32),
                "discs.1.down_blocks.0.conv.weight_orig": torch.randn(32, 13, 4, 4),
                "discs.1.down_blocks.0.conv.weight_u": torch.randn(32),
                "discs.1.conv.weight": torch.randn(1, 512, 1, 1),
            }
        ),
        "optimizer_generator": {
            "state": {0: {"step": 5, "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}},
            "param_groups": [
                {
                    "lr": 2e-4,
                    "betas": (0.5, 0.999),
                    "eps": 1e-8,
                    "weight_decay": 0,
                    "amsgrad": False,
                    "params": [0, 1, 2],
                    "initial_lr": 2e-4,
                }
            ],
        },
        "epoch": 3,
    }


def fomm_settings(preset: str = "vox-256", **changes: object) -> ModelSettingsBase:
    """A fomm model's settings for `preset`, as model.toml would hold them."""
    values = {**FAMILY.defaults(preset), **changes}
    return settings_model("fomm")(**values, preset=preset)


def save(data: object, path: Path, legacy: bool = False) -> Path:
    """torch.save as the authors' torch did (legacy) or as torch saves now (zip)."""
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    return path


class Payload:
    """Unpickling this calls `func(*args)`: what a hostile checkpoint plants."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return (self.func, self.args)


def payloads(marker: Path) -> dict[str, Payload]:
    """Two ways of creating `marker` on load: a shell command, and Python code."""
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
    }


def hostile_checkpoint(
    path: Path, payload: Payload, *, nested: bool = False, legacy: bool = False
) -> Path:
    """A plausible checkpoint with the payload among its entries, or inside a state dict."""
    generator: dict[str, Any] = OrderedDict({"first.conv.bias": torch.zeros(16)})
    data: dict[str, Any] = {
        "generator": generator,
        "kp_detector": OrderedDict({"kp.bias": torch.zeros(10)}),
    }
    if nested:
        generator["first.conv.weight"] = payload
    else:
        data["epoch"] = payload
    return save(data, path, legacy)
