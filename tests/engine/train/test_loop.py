"""The training loop on the sample facesets: learning, exact resume, rollback on NaN."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors import safe_open

from engine.config import RunSettings, build
from engine.events import Metrics, Warning
from engine.train.loop import train
from engine.workspace import Workspace


def _copy(sample_workspace: Workspace, tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    return ws


def _weights(ws: Workspace, model: str) -> dict[str, torch.Tensor]:
    path = ws.model_dir(model) / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}  # noqa: SIM118


def _run(**kw) -> RunSettings:
    return build(RunSettings, **{"save_every": 1000, "preview_every": 1000, **kw})


NEW = {"faceset_a": "a", "faceset_b": "b", "preset": "tiny", "batch_size": 8}


@pytest.mark.slow
def test_loss_falls_on_tiny(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    events = []
    result = train(ws, "m", NEW, _run(steps=120, log_every=10), events.append)
    metrics = [e for e in events if isinstance(e, Metrics)]
    first = metrics[0].losses["a"] + metrics[0].losses["b"]
    last = metrics[-1].losses["a"] + metrics[-1].losses["b"]
    assert result.steps == 120
    assert last < 0.8 * first, (first, last)
    lines = (ws.model_dir("m") / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == list(range(10, 121, 10))
    preview = ws.model_dir("m") / "previews" / "latest.png"
    assert preview.is_file() and preview.stat().st_size > 1000
    assert (ws.model_dir("m") / "model.toml").read_text().count('preset = "tiny"') == 1


@pytest.mark.slow
def test_resume_is_exact(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    train(ws, "straight", NEW, _run(steps=20, log_every=5))
    train(ws, "halves", NEW, _run(steps=10, log_every=5))
    again = train(ws, "halves", {}, _run(steps=20, log_every=5))
    assert again.steps == 20
    straight, halves = _weights(ws, "straight"), _weights(ws, "halves")
    assert straight.keys() == halves.keys()
    for key in straight:
        assert torch.equal(straight[key], halves[key]), key
    # The metrics history has each step once, in order.
    lines = (ws.model_dir("halves") / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [5, 10, 15, 20]


@pytest.mark.slow
def test_nan_rolls_back_and_goes_on(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    poisoned = []

    def poison(step: int, batch: dict[str, torch.Tensor]) -> None:
        if step == 12 and not poisoned:
            poisoned.append(step)
            batch["in_a"] = torch.full_like(batch["in_a"], math.nan)

    events = []
    result = train(
        ws, "m", NEW, _run(steps=20, save_every=10, log_every=5), events.append, step_hook=poison
    )
    warnings = [e for e in events if isinstance(e, Warning)]
    assert poisoned == [12]
    assert len(warnings) == 1 and "rolled back to step 10" in warnings[0].message
    assert result.steps == 20
    assert math.isfinite(result.loss_a) and math.isfinite(result.loss_b)
    for tensor in _weights(ws, "m").values():
        assert torch.isfinite(tensor).all()


def test_repeated_nan_stops_with_a_clear_error(sample_workspace, tmp_path):
    from engine.train.loop import TrainingDiverged

    ws = _copy(sample_workspace, tmp_path)

    def always(step: int, batch: dict[str, torch.Tensor]) -> None:
        batch["in_b"] = torch.full_like(batch["in_b"], math.nan)

    with pytest.raises(TrainingDiverged, match="diverged"):
        train(ws, "m", NEW, _run(steps=20, log_every=5), step_hook=always)
    # The last good checkpoint is still there and whole.
    assert all(torch.isfinite(t).all() for t in _weights(ws, "m").values())


@pytest.mark.slow
def test_resume_of_a_cuda_checkpoint_on_cpu(sample_workspace, tmp_path):
    """A checkpoint saved on a GPU carries CUDA's 16-byte generator state, which a CPU
    generator cannot take: training resumes anyway, on its own seeded stream."""
    from safetensors.torch import load_file, save_file

    ws = _copy(sample_workspace, tmp_path)
    train(ws, "m", NEW, _run(steps=2))
    path = ws.model_dir("m") / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    assert tensors["rng.gen0"].numel() != 16
    tensors["rng.gen0"] = torch.arange(16, dtype=torch.uint8)  # as torch.cuda's get_state
    save_file(tensors, path, metadata)
    again = train(ws, "m", {}, _run(steps=4))
    assert again.steps == 4
