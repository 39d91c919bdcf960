"""Swap models: one shared encoder, a face per identity.

`build_model(ArchSpec.for_preset("tiny"))` gives a ready model; rebuild from a
checkpoint's saved spec with `ArchSpec.from_dict`.
"""

from __future__ import annotations

from torch import nn

from engine.train.models.base import IDENTITIES, ArchSpec, SharedEncoderModel, SwapModel
from engine.train.models.hd import HDModelDF, HDModelLIAE
from engine.train.models.original import OriginalModel
from engine.train.models.tiny import TinyModel

__all__ = [
    "IDENTITIES",
    "ArchSpec",
    "HDModelDF",
    "HDModelLIAE",
    "OriginalModel",
    "SharedEncoderModel",
    "SwapModel",
    "TinyModel",
    "build_model",
    "count_parameters",
]


def build_model(arch: ArchSpec) -> SwapModel:
    """A freshly initialised model for `arch` (the spec validated itself when built)."""
    if arch.preset == "original":
        return OriginalModel(arch)
    if arch.preset == "tiny":
        return TinyModel(arch)
    if arch.preset == "hd":
        return HDModelLIAE(arch) if arch.layout == "liae" else HDModelDF(arch)
    raise ValueError(f"unknown model preset {arch.preset!r}")


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
