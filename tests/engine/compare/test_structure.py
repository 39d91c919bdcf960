"""compare's structure figures: parameters, FLOPs and memory of one real training step."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.compare.structure import StructureFigures, measure_structure
from engine.config import RunSettings, build
from engine.errors import BadInputError, NotFoundError
from engine.locks import model_lock
from engine.train import registry
from engine.train.data import load_faces
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.train.loop import train
from engine.train.registry import implementation
from engine.train.store import ModelPaths, create_model, load_settings, open_model
from engine.workspace import Workspace

MIB = 2**20
FACESETS = {"faceset_a": "a", "faceset_b": "b"}
# name -> (preset, batch size per side). tiny4 is trained one step (it has a checkpoint);
# the others only have their model.toml, which is all measuring needs. `original` runs
# at batch 2: its figures per example do not depend on the batch, and batch 16 costs 13 s.
MODELS = {"tiny4": ("tiny", 4), "tiny16": ("tiny", 16), "original": ("original", 2)}


# A family with neither size nor layout, two networks with an optimizer each and two
# passes per step (as a GAN would have), small enough to work out its figures by hand.
PROBE_SIZE = 32
PROBE = registry.FamilyInfo(
    name="structure_probe",
    help="two convolutions, each with its own optimizer and its own pass",
    implementation="given:to_register",
    facesets=("faceset_a",),
    presets=(registry.Preset("structure-probe", "test preset"),),
    options=(
        registry.Option("faceset_a", "faceset", None, "faces to learn", flag=True),
        registry.Option("width", "int", 8, "hidden channels", ge=1),
        registry.Option("batch_size", "int", 4, "faces per step", ge=1),
    ),
)


class Probe(Family):
    info: ClassVar = PROBE
    loss_names: ClassVar[tuple[str, ...]] = ("recon",)

    def load_data(self, device: torch.device) -> dict[str, Any]:
        s: Any = self.settings
        self.data = load_faces(self.workspace, s.faceset_a, PROBE_SIZE).to(device)
        return {"faces": len(self.data)}

    @property
    def examples_per_step(self) -> int:
        return int(self.settings.batch_size)  # type: ignore[attr-defined]

    def build(self) -> torch.nn.Module:
        width = int(self.settings.width)  # type: ignore[attr-defined]
        conv = torch.nn.Conv2d
        return torch.nn.ModuleDict(
            {"down": conv(3, width, 3, padding=1), "up": conv(width, 3, 3, padding=1)}
        )

    def forward_module(self, networks: torch.nn.Module) -> torch.nn.Module:
        return torch.nn.Sequential(networks["down"], torch.nn.ReLU(), networks["up"])

    def optimizers(self, networks: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
        return {
            "down": make_optimizer(networks["down"], 1e-3),
            "up": make_optimizer(networks["up"], 1e-3),
        }

    def train_step(self, ctx: StepContext) -> StepResult:
        n = (self.examples_per_step,)
        x = self.data.faces[torch.randint(len(self.data), n, generator=ctx.generator)] / 255
        if not getattr(self, "warmed", False):
            # One-off work of a run's first step (fast-swap trains its lighting network
            # then), here a pass over three batches: not what every step costs.
            self.warmed = True
            ctx.forward(torch.cat([x, x, x])).mean().backward()
        for name in ("down", "up"):
            with ctx.autocast():
                loss = (ctx.forward(x) - x).abs().mean()
            ctx.optimize(loss, self.optims[name], self.networks[name].parameters())
        return StepResult(float(loss.detach()), {"loss_recon": float(loss.detach())})

    def preview(self, networks: torch.nn.Module, path: Path) -> Path:
        return path


@pytest.fixture(scope="module")
def workspace(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The sample facesets copied, with the models of MODELS in it."""
    ws = Workspace(tmp_path_factory.mktemp("structure_ws"))
    shutil.copytree(sample_workspace.facesets_dir, ws.facesets_dir)
    ws.ensure()
    run = build(RunSettings, steps=1, preview_every=1000, snapshot_every=0, precision="fp32")
    train(ws, "tiny4", {"preset": "tiny", "batch_size": 4, **FACESETS}, run)
    for name, (preset, batch) in MODELS.items():
        if name != "tiny4":
            settings, paths, _ = open_model(
                ws, name, {"preset": preset, "batch_size": batch, **FACESETS}
            )
            create_model(settings, paths)
    return ws


@pytest.fixture(scope="module")
def figures(workspace: Workspace) -> dict[str, StructureFigures]:
    return {name: measure_structure(workspace, name) for name in MODELS}


def _built(workspace: Workspace, name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model's networks and forward module, built through the registry as training does."""
    settings = load_settings(ModelPaths(workspace.model_dir(name)).toml)
    family = implementation(settings.family)(settings, workspace)
    networks = family.build()
    return networks, family.forward_module(networks)


def _forward_flops_per_example(workspace: Workspace, name: str, size: int) -> float:
    """FLOPs of the forward pass alone, over one face per side (the autoencoder's pair)."""
    _, forward = _built(workspace, name)
    face = torch.rand(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(face, face)
    return counter.get_total_flops() / 2


def _folder_state(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under `folder`: size, mtime and (files) a hash of the bytes."""
    return {
        str(path.relative_to(folder)): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "",
        )
        for path in sorted(folder.rglob("*"))
    }


def test_settings_are_those_of_model_toml(figures):
    tiny = figures["tiny16"]
    assert (tiny.family, tiny.preset, tiny.layout, tiny.size, tiny.batch_size) == (
        "autoencoder",
        "tiny",
        "df",
        64,
        16,
    )
    assert figures["original"].preset == "original"
    assert figures["original"].batch_size == 2
    assert tiny.measured == "one training step on CPU, fp32"


@pytest.mark.parametrize("name", ["tiny16", "original"])
def test_parameters_and_their_memory_match_the_built_networks(workspace, figures, name):
    networks, _ = _built(workspace, name)
    count = sum(p.numel() for p in networks.parameters())
    measured = figures[name]
    assert measured.parameters == count
    # fp32: 4 bytes a weight, as much again for its gradient, twice that for Adam's moments.
    weights_mb = 4 * count / MIB
    parts = measured.memory_parts
    assert set(parts) == {"weights", "gradients", "optimizer", "activations"}
    assert parts["weights"] == pytest.approx(weights_mb, rel=1e-3)
    assert parts["gradients"] == pytest.approx(weights_mb, rel=1e-3)
    assert parts["optimizer"] == pytest.approx(2 * weights_mb, rel=1e-2)
    assert parts["activations"] > 0
    assert measured.memory_mb == pytest.approx(sum(parts.values()), abs=0.01)


@pytest.mark.parametrize("name", ["tiny16", "original"])
def test_a_training_step_costs_two_to_four_forward_passes(workspace, figures, name):
    # Backward costs about twice the forward (gradients of inputs and of weights), and
    # the loss adds a little (SSIM's convolutions): about three forwards per example.
    forward = _forward_flops_per_example(workspace, name, figures[name].size)
    ratio = figures[name].flops_per_example / forward
    assert 2 <= ratio <= 4, ratio


def test_flops_per_example_do_not_depend_on_the_batch_but_activations_do(figures):
    small, large = figures["tiny4"], figures["tiny16"]
    assert large.flops_per_example == pytest.approx(small.flops_per_example, rel=0.1)
    for part in ("weights", "gradients", "optimizer"):
        assert large.memory_parts[part] == small.memory_parts[part]
    # 4x the batch, about 4x the activations kept: weights saved for backward (a linear
    # layer keeps its weight) are not counted again as activations.
    growth = large.memory_parts["activations"] / small.memory_parts["activations"]
    assert 3.5 <= growth <= 4.5, growth


def test_original_is_bigger_than_tiny(figures):
    original, tiny = figures["original"], figures["tiny16"]
    assert original.parameters > 10 * tiny.parameters
    assert original.flops_per_example > 10 * tiny.flops_per_example
    assert original.memory_parts["weights"] > 10 * tiny.memory_parts["weights"]


def test_measuring_leaves_the_model_and_torch_as_they_were(workspace):
    # tiny4 was trained: it has a checkpoint, metrics and a preview. Measured while its
    # training lock is held, as while a job trains it: measuring needs no lock.
    assert ModelPaths(workspace.model_dir("tiny4")).checkpoint.is_file()
    with model_lock(workspace, "tiny4"):
        before = _folder_state(workspace.models_dir)
        rng = torch.get_rng_state()
        with torch.no_grad():
            measure_structure(workspace, "tiny4")
            assert not torch.is_grad_enabled()
        assert torch.equal(torch.get_rng_state(), rng)
        assert _folder_state(workspace.models_dir) == before


def test_a_missing_model_is_not_found(workspace):
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        measure_structure(workspace, "nope")
    with pytest.raises(BadInputError):
        measure_structure(workspace, "../tiny4")


def test_any_family_is_measured_through_the_family_interface_alone(workspace):
    registry.register(PROBE, Probe)
    try:
        settings, paths, _ = open_model(
            workspace, "probe", {"preset": "structure-probe", "faceset_a": "a", "width": 8}
        )
        create_model(settings, paths)
        measured = measure_structure(workspace, "probe")
    finally:
        registry.unregister(PROBE.name)
    width, batch, pixels = 8, 4, PROBE_SIZE**2
    assert (measured.family, measured.preset) == ("structure_probe", "structure-probe")
    assert (measured.size, measured.layout, measured.batch_size) == (None, None, batch)
    parameters = 2 * (3 * width * 9) + width + 3
    assert measured.parameters == parameters
    # Each convolution's forward: 2 * 3 * width * 9 multiply-adds per pixel of an example.
    # Per pass: both forwards, the weight gradient of `down` (its input needs none) and
    # both gradients of `up`: five of those; two passes a step.
    conv = 2 * 3 * width * 9 * pixels
    assert measured.flops_per_example == 10 * conv
    parts = {name: mib * MIB for name, mib in measured.memory_parts.items()}
    assert parts["weights"] == parts["gradients"] == 4 * parameters
    # Both optimizers' Adam moments (and their step counters, a few bytes each).
    assert 8 * parameters <= parts["optimizer"] <= 8 * parameters + 64
    # Kept for backward in one pass: the faces (3 channels), ReLU's output (`width`) and
    # the difference abs() keeps (3). The second pass keeps as much again, but only after
    # the first one's backward let go: the peak is one pass, not the sum of two.
    assert parts["activations"] == 4 * batch * pixels * (3 + width + 3)
