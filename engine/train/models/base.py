"""What a swap model is: its architecture spec and the interface every model keeps."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from engine.train.families.autoencoder import FAMILY

IDENTITIES = ("a", "b")

_ARCH_FIELDS = ("size", "layout", "enc_dims", "dec_dims", "bottleneck", "learn_mask")
# Per preset: default widths, and the sizes and layouts it accepts (declared once, in the
# family's FAMILY).
_DEFAULTS: dict[str, dict[str, Any]] = {
    p.name: {k: v for k, v in FAMILY.defaults(p.name).items() if k in _ARCH_FIELDS}
    for p in FAMILY.presets
}
_SIZES: dict[str, tuple[int, ...]] = {p.name: p.allowed["size"] for p in FAMILY.presets}
_LAYOUTS: dict[str, tuple[str, ...]] = {p.name: p.allowed["layout"] for p in FAMILY.presets}


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """A model's architecture, frozen into model.toml; rebuilding from it gives the same net."""

    preset: str
    size: int
    layout: str = "df"
    enc_dims: int
    dec_dims: int
    bottleneck: int
    learn_mask: bool

    def __post_init__(self) -> None:
        if self.preset not in _DEFAULTS:
            raise ValueError(f"unknown model preset {self.preset!r}; use one of {list(_DEFAULTS)}")
        sizes = _SIZES[self.preset]
        if self.size not in sizes:
            low, high = sizes[0], sizes[-1]
            allowed = (
                f"exactly {low}"
                if low == high
                else f"{low}-{high} in steps of {sizes[1] - low}: {list(sizes)}"
            )
            raise ValueError(f"{self.preset} models take size {allowed}, not {self.size}")
        if self.layout not in _LAYOUTS[self.preset]:
            raise ValueError(
                f"{self.preset} models take layout {' or '.join(_LAYOUTS[self.preset])}, "
                f"not {self.layout!r}"
            )
        for name in ("enc_dims", "dec_dims", "bottleneck"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        if self.layout == "liae" and self.bottleneck % 2:
            # LIAE's two inters each give half the code.
            raise ValueError(f"liae needs an even bottleneck, not {self.bottleneck}")

    @classmethod
    def for_preset(cls, preset: str, size: int | None = None, **overrides: Any) -> ArchSpec:
        """The preset's defaults, with `size` and any other field overridden."""
        if preset not in _DEFAULTS:
            raise ValueError(f"unknown model preset {preset!r}; use one of {list(_DEFAULTS)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"preset", "size"}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(
                f"unknown architecture field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        values = {**_DEFAULTS[preset], **overrides}
        if size is not None:
            values["size"] = size
        return cls(preset=preset, **values)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, strs and bools, ready for TOML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        """Inverse of to_dict; fields missing from older files take the preset's defaults."""
        values = dict(data)
        try:
            preset = values.pop("preset")
        except KeyError:
            raise ValueError("architecture has no 'preset'") from None
        return cls.for_preset(preset, values.pop("size", None), **values)


class SwapModel(nn.Module, ABC):
    """One shared encoder, one face per identity.

    Inputs are (N, 3, S, S) floats in [0, 1]. Outputs are faces in [0, 1] and,
    when the model learns masks, (N, 1, S, S) masks in [0, 1]; else None.
    Under autocast the outputs may be bf16/fp16: cast to float for the loss.
    """

    identities: ClassVar[tuple[str, ...]] = IDENTITIES

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.size = spec.size
        self.learns_mask = spec.learn_mask

    @abstractmethod
    def forward(self, x: Tensor, identity: str) -> tuple[Tensor, Tensor | None]:
        """Redraw `x` as `identity`: forward(xa, "b") is the swap A→B."""

    @abstractmethod
    def forward_pair(
        self, xa: Tensor, xb: Tensor
    ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """A through a's path and B through b's, encoding both in one batch (the training step)."""

    def _check_identity(self, identity: str) -> None:
        if identity not in self.identities:
            raise ValueError(f"identity must be one of {self.identities}, not {identity!r}")


class SharedEncoderModel(SwapModel):
    """The DF layout: shared encoder (with its dense bottleneck), one decoder per identity.

    Each decoder returns (face, mask | None).
    """

    def __init__(self, spec: ArchSpec, encoder: nn.Module, decoders: dict[str, nn.Module]):
        super().__init__(spec)
        self.encoder = encoder
        self.decoders = nn.ModuleDict(decoders)

    def forward(self, x: Tensor, identity: str) -> tuple[Tensor, Tensor | None]:
        self._check_identity(identity)
        return self.decoders[identity](self.encoder(x))

    def forward_pair(
        self, xa: Tensor, xb: Tensor
    ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        code_a, code_b = self.encoder(torch.cat([xa, xb])).split([len(xa), len(xb)])
        face_a, mask_a = self.decoders["a"](code_a)
        face_b, mask_b = self.decoders["b"](code_b)
        return face_a, mask_a, face_b, mask_b
