"""Shared fixtures: the sample data, and facesets extracted from it once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ExtractConfig, build
from engine.extract import extract
from engine.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace with facesets `a` and `b` extracted from sample_data with dlib."""
    ws = Workspace(tmp_path_factory.mktemp("sample_ws"))
    for name in ("a", "b"):
        config = build(ExtractConfig, sources=[SAMPLE / name], faceset=name, backend="dlib")
        extract(config, ws)
    return ws


@pytest.fixture(scope="session")
def tiny_model(sample_workspace: Workspace) -> str:
    """Model `tiny` in sample_workspace: A = a, B = b, briefly trained (it changes faces)."""
    from engine.config import RunSettings
    from engine.train.loop import train

    name = "tiny"
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "seed": 0}
    run = build(RunSettings, steps=120, save_every=120, preview_every=1000, snapshot_every=0)
    train(sample_workspace, name, requested, run)
    return name


@pytest.fixture(scope="session")
def sample_compare(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """One finished `compare` of two tiny models ("tiny", "tiny:size=48"), 64 training
    examples each, converting 0.6 s of the sample clip, in a workspace of its own:
    (workspace, config, result, events). Run once for the engine's and the wizard's tests."""
    import shutil

    from clips import short_clip

    from engine.compare.run import compare
    from engine.config import CompareConfig

    root = tmp_path_factory.mktemp("compare")
    ws = Workspace(root / "ws")
    shutil.copytree(sample_workspace.facesets_dir, ws.root / "facesets")
    config = build(
        CompareConfig,
        faceset_a="a",
        faceset_b="b",
        models=["tiny", "tiny:size=48"],
        clip=short_clip(root / "clip.mp4", 0.6),
        budget="64",
        report=ws.compares_dir / "pair",
        backend="dlib",
        device="cpu",
        sheet_frames=2,
    )
    events: list = []
    return ws, config, compare(config, ws, events.append), events


@pytest.fixture(scope="session")
def fast_swap_model(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """A fast-swap-small model `fs` of B = `b` (inputs: `a`, the default), 24 steps at batch 4
    against a random VGG-19, in a workspace of its own holding copies of the sample
    facesets: (workspace, model name, the training events). Shared by the engine's, the
    CLI's and the wizard's fast-swap tests; treat it as read-only (copy it to train on)."""
    import shutil

    import torch
    from vggfile import patched_torch_home

    from engine.config import RunSettings
    from engine.train.loop import train

    root = tmp_path_factory.mktemp("fast_swap")
    ws = Workspace(root / "ws")
    shutil.copytree(sample_workspace.facesets_dir, ws.root / "facesets")
    requested = {
        "preset": "fast-swap-small",
        "faceset_b": "b",
        "batch_size": 4,
        "seed": 3,
        "light_steps": 8,
        "lr": 2e-3,
    }
    run = build(
        RunSettings,
        steps=24,
        save_every=24,
        preview_every=24,
        snapshot_every=0,
        log_every=1,
        device="cpu",
        precision="fp32",
    )
    events: list = []
    threads = torch.get_num_threads()
    with patched_torch_home(root / "torch"):
        torch.set_num_threads(1)  # on contended cores two threads wait on each other
        try:
            train(ws, "fs", requested, run, events.append)
        finally:
            torch.set_num_threads(threads)
    return ws, "fs", events


OCCLUSION_STEPS = 120  # as the occlusion_model fixture trains


@pytest.fixture(scope="session")
def occlusion_model(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """An occlusion-small mask `occ` (32 px, width 8) trained on both sample facesets, 120
    steps at batch 8, lr 2e-3 (a few seconds), in a workspace of its own holding copies of them:
    (workspace, model name). On held-out faces it already beats the hull at telling
    synthetic occluders from the face; treat it as read-only (copy the workspace to
    train on or to change its facesets)."""
    import shutil

    import torch

    from engine.config import RunSettings
    from engine.train.loop import train

    ws = Workspace(tmp_path_factory.mktemp("occlusion") / "ws")
    shutil.copytree(sample_workspace.facesets_dir, ws.root / "facesets")
    requested = {"preset": "occlusion-small", "size": 32, "batch_size": 8, "lr": 2e-3, "seed": 0}
    run = build(
        RunSettings,
        steps=OCCLUSION_STEPS,
        save_every=OCCLUSION_STEPS,
        preview_every=OCCLUSION_STEPS,
        snapshot_every=0,
        log_every=10,
        device="cpu",
        precision="fp32",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on contended cores two threads wait on each other
    try:
        train(ws, "occ", requested, run)
    finally:
        torch.set_num_threads(threads)
    return ws, "occ"


@pytest.fixture
def facesets_ws(sample_workspace: Workspace, tmp_path: Path) -> Path:
    """A private workspace holding copies of the sample facesets `a` and `b`, no models:
    jobs and screens may write there without touching the shared one."""
    import shutil

    root = tmp_path / "ws"
    root.mkdir()
    shutil.copytree(sample_workspace.facesets_dir, root / "facesets")
    return root


@pytest.fixture(autouse=True)
def _report_line(request: pytest.FixtureRequest, record_property) -> None:
    """Tag a test with its `report` marker's line, for bench/faults.py to count.

    A test that tries several things itself also records "tried" and "ok".
    """
    marker = request.node.get_closest_marker("report")
    if marker is not None:
        record_property("report", marker.args[0])
