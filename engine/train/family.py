"""What a model family supplies to the one Trainer (engine/train/loop.py).

The Trainer owns what every family shares: device and precision, DDP, stop and
save-now, NaN/spike rollback, atomic checkpoints with exact resume, snapshots,
metrics, events and time limits. A family owns the rest: what a training example
is, its networks, its optimizers (one or several), one training step with its
losses, its preview, and what model.toml records about its data.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from engine.train.registry import CropGeometry, FamilyInfo, ModelSettingsBase
from engine.workspace import Workspace

StepHook = Callable[[int, dict[str, torch.Tensor]], None]


def make_optimizer(
    params: nn.Module | Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float] = (0.5, 0.999),
) -> torch.optim.Optimizer:
    """Adam with faceswap's betas; the fused kernel when this torch has it (6x faster on CPU)."""
    found = list(params.parameters() if isinstance(params, nn.Module) else params)
    try:
        return torch.optim.Adam(found, lr=lr, betas=betas, eps=1e-7, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(found, lr=lr, betas=betas, eps=1e-7)


@dataclass
class StepContext:
    """What the Trainer hands a family's step: the shared machinery, nothing family-specific."""

    step: int
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype, None for fp32
    generator: torch.Generator  # seeded, saved and restored with every checkpoint
    forward: Callable[..., Any]  # the family's forward module, DDP-wrapped and compiled
    scaler: torch.amp.GradScaler
    grad_clip: float
    hook: StepHook | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for the forward pass and the loss (not the backward)."""
        return torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def optimize(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter]
    ) -> None:
        """Backward, unscale, clip to `grad_clip`, step. The Trainer updates the scaler once
        per step afterwards, so a family with several optimizers calls this once for each."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(optimizer)


@dataclass
class StepResult:
    """One step's total loss (checked for NaN and spikes) and its named parts.

    `losses` holds at least `loss_<name>` for each of the family's `loss_names`
    (logged to metrics.jsonl and shown); other keys are kept for the family.
    """

    total: float
    losses: dict[str, float]


class Family(ABC):
    """One kind of model. Subclasses set `info` and implement the abstract methods.

    Lifecycle, driven by the Trainer: `__init__(settings, workspace)`, `load_data(device)`
    (refuses unusable data with a BadInputError before anything is written), `build()`,
    `optimizers()`, `attach()`, then `train_step` per step and `preview` now and then.
    """

    info: ClassVar[FamilyInfo]

    @property
    def loss_names(self) -> tuple[str, ...]:
        """Names of the headline losses, logged as loss_<name> and charted (the
        declaration's, `info.loss_names`)."""
        return self.info.loss_names

    def __init__(self, settings: ModelSettingsBase, workspace: Workspace) -> None:
        self.settings = settings
        self.workspace = workspace

    @classmethod
    def check(cls, settings: ModelSettingsBase) -> None:
        """Refuse (ValueError, one line) settings the options' own limits let through."""
        return None

    @abstractmethod
    def load_data(self, device: torch.device) -> dict[str, Any]:
        """Load the training data onto `device`; returns what the Started event reports."""

    def geometry(self) -> dict[str, CropGeometry]:
        """How the training faces were cut, per side, for model.toml (known after load_data)."""
        return {}

    @property
    @abstractmethod
    def examples_per_step(self) -> int:
        """Training examples one step of one process consumes (for examples/s)."""

    @abstractmethod
    def build(self) -> nn.Module:
        """A freshly initialised module holding every network (its state is the checkpoint's)."""

    def forward_module(self, networks: nn.Module) -> nn.Module:
        """The module whose forward runs once per step (what DDP wraps)."""
        return networks

    @abstractmethod
    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name; the first one is the main one. Names: [a-z0-9_]."""

    def attach(self, networks: nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Called by the Trainer once the networks and optimizers exist (on the device)."""
        self.networks = networks
        self.optims = optimizers

    @abstractmethod
    def train_step(self, ctx: StepContext) -> StepResult:
        """Draw a batch with ctx.generator, compute the losses, call ctx.optimize."""

    @abstractmethod
    def preview(self, networks: nn.Module, path: Path) -> Path:
        """Write a preview image of held-out data to `path` (atomically)."""

    @classmethod
    def inference_module(cls, settings: ModelSettingsBase) -> nn.Module:
        """The module convert and score swap faces with, built from model.toml alone (no data).

        Families whose `info.converts` is True implement it. The module loads the
        checkpoint's keys (it is the module `build()` returns, or holds the same keys),
        has attributes `size: int` and `learns_mask: bool`, and
        `forward(x, identity) -> (face, mask | None)`: x (N, 3, S, S) in [0, 1], identity
        a side ("a", "b"), face (N, 3, S, S) in [0, 1], mask (N, 1, S, S) in [0, 1].
        """
        raise NotImplementedError(f"{cls.info.name} models do not swap faces")


def parameters(modules: Iterable[nn.Module]) -> Iterator[nn.Parameter]:
    for module in modules:
        yield from module.parameters()
