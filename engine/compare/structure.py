"""A model's structure for compare's report: its size, FLOPs and memory in one training step.

Every family is measured the same way, through the Family ABC alone: its data is
loaded and its networks built as the Trainer does, then two real training steps run
on the CPU in fp32, the second under torch's flop counter while a saved-tensor hook
weighs what autograd keeps for the backward pass (the first may do one-off work).
Nothing is written to the model's folder and no lock is taken, so a model can be
measured while it trains.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.config import RunSettings
from engine.errors import NotFoundError
from engine.results import StructureFigures
from engine.train.family import Family, StepContext
from engine.train.registry import ModelSettingsBase, implementation
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace

MIB = 2**20
MEASURED = "one training step on CPU, fp32"
# Gradients clipped as a run with the default settings clips them.
GRAD_CLIP: float = RunSettings.model_fields["grad_clip"].default


def measure_structure(workspace: Workspace, model: str) -> StructureFigures:
    """Measure model `model` of `workspace` by one training step of it on the CPU (its second).

    The model must exist (its model.toml); its weights, if any, are not read. Its
    facesets are loaded as training loads them. Raises NotFoundError for a missing
    model. Torch's global RNG and grad mode are as they were afterwards.
    """
    settings = _existing_settings(workspace, model)
    # Building seeds torch's CPU generator, as the Trainer does; fork_rng puts it back after.
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        figures = _measure(settings, workspace)
    # The step's networks, optimizer state and data were only referenced from _measure.
    gc.collect()
    return figures


def _existing_settings(workspace: Workspace, model: str) -> ModelSettingsBase:
    paths = ModelPaths(workspace.model_dir(model))
    if not paths.toml.is_file():
        raise NotFoundError(
            f"no model {model!r} in {workspace.models_dir}",
            "train one first: swapdeck train -w WORKSPACE -m NAME -a FACESET -b FACESET",
        )
    return load_settings(paths.toml)


def _measure(settings: ModelSettingsBase, workspace: Workspace) -> StructureFigures:
    device = torch.device("cpu")
    family: Family = implementation(settings.family)(settings, workspace)
    family.load_data(device)
    # As the Trainer's _prepare does, minus what only a run needs (geometry, DDP, resume).
    # Only the CPU generator (the networks are built there): torch.manual_seed would also
    # reseed CUDA's, which fork_rng(devices=[]) does not restore.
    torch.default_generator.manual_seed(settings.seed)
    networks = family.build().to(device)
    forward = family.forward_module(networks)
    optimizers = family.optimizers(networks)
    family.attach(networks, optimizers)
    held = [*networks.parameters(), *networks.buffers()]
    ctx = StepContext(
        step=0,
        device=device,
        dtype=None,
        generator=torch.Generator(device=device).manual_seed(settings.seed * 1000),
        forward=forward,
        scaler=torch.amp.GradScaler(device.type, enabled=False),
        grad_clip=GRAD_CLIP,
    )
    # A first step does what only a run's first step does (optimizer state appears;
    # fast-swap trains its lighting network): the second costs what every step costs.
    family.train_step(ctx)
    ctx.step = 1
    # Weights that autograd saves (a linear layer keeps its weight) are weights, not activations.
    saved = _SavedActivations(exclude={_storage(t)[0] for t in held})
    with (
        FlopCounterMode(display=False) as counter,
        torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack),
    ):
        family.train_step(ctx)
    grads = [p.grad for p in networks.parameters() if p.grad is not None]
    state = [
        value
        for optimizer in optimizers.values()
        for per_param in optimizer.state.values()
        for value in per_param.values()
        if isinstance(value, torch.Tensor)
    ]
    parts = {
        "weights": _bytes(held),
        "gradients": _bytes(grads),
        "optimizer": _bytes(state),
        "activations": saved.peak,
    }
    return StructureFigures(
        family=settings.family,
        preset=settings.preset,
        layout=_optional(settings, "layout", str),
        size=_optional(settings, "size", int),
        batch_size=_optional(settings, "batch_size", int),
        parameters=sum(p.numel() for p in networks.parameters()),
        flops_per_example=counter.get_total_flops() / family.examples_per_step,
        memory_mb=sum(parts.values()) / MIB,
        memory_parts={name: size / MIB for name, size in parts.items()},
        measured=MEASURED,
    )


def _optional(settings: ModelSettingsBase, name: str, kind: type) -> Any:
    """A generic setting that a family may lack (or hold as another type): None then."""
    value = getattr(settings, name, None)
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def _storage(tensor: torch.Tensor) -> tuple[int, int]:
    """(address, bytes) of the storage under `tensor`: views of one storage count once."""
    try:
        storage = tensor.untyped_storage()
    except (RuntimeError, NotImplementedError):  # tensors without storage (sparse, nested)
        return 0, 0
    return storage.data_ptr(), storage.nbytes()


def _bytes(tensors: Iterable[torch.Tensor]) -> int:
    sizes = dict(_storage(t) for t in tensors)
    sizes.pop(0, None)
    return sum(sizes.values())


class _Held:
    """A tensor autograd saved for backward; tells the tally when autograd lets go of it."""

    __slots__ = ("address", "tally", "tensor")

    def __init__(self, tensor: torch.Tensor, address: int, tally: _SavedActivations) -> None:
        self.tensor = tensor
        self.address = address
        self.tally = tally

    def __del__(self) -> None:
        self.tally.release(self.address)


class _SavedActivations:
    """Bytes of the distinct storages autograd holds for backward, now and at their peak.

    Autograd drops what it saved once the backward pass has used it, so the peak (not
    the sum over the step) is what a step needs, also for families with several passes.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.holders: dict[int, int] = {}  # storage address -> saved tensors using it
        self.sizes: dict[int, int] = {}
        self.live = 0
        self.peak = 0

    def pack(self, tensor: torch.Tensor) -> Any:
        address, size = _storage(tensor)
        if address == 0 or address in self.exclude:
            return tensor
        if address not in self.holders:
            self.holders[address] = 0
            self.sizes[address] = size
            self.live += size
            self.peak = max(self.peak, self.live)
        self.holders[address] += 1
        return _Held(tensor, address, self)

    @staticmethod
    def unpack(packed: Any) -> torch.Tensor:
        return packed.tensor if isinstance(packed, _Held) else packed

    def release(self, address: int) -> None:
        self.holders[address] -= 1
        if not self.holders[address]:
            del self.holders[address]
            self.live -= self.sizes.pop(address)
