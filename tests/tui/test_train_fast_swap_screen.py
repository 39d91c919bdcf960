"""The Train screen with a fast-swap preset: B required, A optional ("none"), the inputs a
multi-select of every other faceset (all ticked at first), and a real detached job whose
chart and stats carry the family's own losses (content, style, light, tv).

The workspace holds the sample facesets `a` and `b` and `c`, a copy of `a` under another
name. VGG-19 is a random file in a temporary torch hub cache, which the job inherits.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch.hub
from textual.pilot import Pilot
from textual.widgets import Select, SelectionList, Static
from trainformutil import form_inputs, start_recorded
from vggfile import torch_home_with_vgg

from engine import jobs
from engine.config import read_toml
from engine.train.store import ModelPaths, create_model, new_settings
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.train import TrainScreen
from tui.widgets.loss_chart import LossChart
from tui.widgets.preview_image import PreviewImage

LOSSES = ["content", "style", "light", "tv"]


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    shutil.copytree(facesets_ws / "facesets" / "a", facesets_ws / "facesets" / "c")
    return facesets_ws


@pytest.fixture
def stop_leftovers(ws: Path):
    """Whatever a failing test leaves running is stopped, never left to eat the CPU."""
    yield
    for job in jobs.list_jobs(Workspace(ws)):
        if job.running:
            with contextlib.suppress(Exception):
                jobs.stop_job(Workspace(ws), job.id, timeout=60, force=True)


async def _open_train(pilot: Pilot, ui) -> TrainScreen:
    await pilot.press("t")
    await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
    await ui.settle(pilot)
    return pilot.app.screen


def _text(screen: TrainScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def _toggle(pilot: Pilot, screen: TrainScreen, name: str) -> None:
    """Tick or untick `name` with the keys, as a user would."""
    box = screen.query_one("#inputs", SelectionList)
    box.focus()
    await pilot.pause()
    await pilot.press("home", *["down"] * form_inputs(screen)[0].index(name), "space")
    await pilot.pause()


def test_a_fast_swap_preset_shows_b_optional_a_and_the_inputs(
    ws: Path, ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    def fake_start(workspace, model, requested, run):  # records instead of training
        started.append(requested)
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(jobs, "start_train", fake_start)

    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        assert not screen.query_one("#row-inputs").display  # the autoencoder has no inputs
        face_a = screen.query_one("#faceset-a", Select)
        face_b = screen.query_one("#faceset-b", Select)
        assert (face_a.value, face_b.value) == ("a", "b")

        screen.query_one("#preset", Select).value = "fast-swap-small"
        await ui.until(pilot, lambda: screen.has_class("-inputs"), 10)
        assert face_a.value is Select.NULL and face_a.prompt == "none"  # A: optional, none
        assert face_b.value == "b"
        assert form_inputs(screen) == (["a", "c"], ["a", "c"])  # all but B's, all ticked
        # The whole form, Start included, fits the 80x24 terminal.
        start = screen.query_one("#start")
        assert start.region.bottom <= ui.size[1] - 1 and start.region.height == 1
        # Before any run: the stats name the family's losses (looked up off the UI thread).
        await ui.until(pilot, lambda: "content" in _text(screen, "#stats"), 60)
        assert "loss A" not in _text(screen, "#stats")

        await _toggle(pilot, screen, "c")
        assert form_inputs(screen)[1] == ["a"]
        await start_recorded(pilot, ui, screen)
        assert len(started) == 1

        # B becomes `a`: the inputs are then `b` and `c`, `c` still unticked.
        face_b.value = "a"
        await ui.until(pilot, lambda: form_inputs(screen)[0] == ["b", "c"], 10)
        assert form_inputs(screen)[1] == ["b"]
        face_a.value = "c"
        await _toggle(pilot, screen, "c")
        await start_recorded(pilot, ui, screen)
        assert len(started) == 2

        for name in ("b", "c"):
            await _toggle(pilot, screen, name)
        assert form_inputs(screen)[1] == []
        screen.action_start()
        await pilot.pause()
        assert "choose at least one input faceset" in _text(screen, "#status")

        face_b.value = Select.NULL  # B is required
        # Every faceset is listed then; `a`, new to the list, comes ticked.
        await ui.until(pilot, lambda: form_inputs(screen) == (["a", "b", "c"], ["a"]), 10)
        screen.action_start()
        await pilot.pause()
        assert "choose faceset B" in _text(screen, "#status")

        screen.query_one("#preset", Select).value = "tiny"
        await ui.until(pilot, lambda: not screen.has_class("-inputs"), 10)
        assert face_a.prompt != "none"
        await ui.until(pilot, lambda: "loss A" in _text(screen, "#stats"), 10)

    ui.drive(SwapdeckApp(ws), steps)
    assert len(started) == 2
    first, second = started
    assert first["preset"] == "fast-swap-small" and first["faceset_b"] == "b"
    assert first.get("faceset_a") is None and first["inputs"] == ("a",)
    assert first["size"] is None and first["layout"] is None  # not offered for fast-swap
    # All ticked: the family's default (every faceset but B's), not a frozen list.
    assert second["faceset_b"] == "a" and second["faceset_a"] == "c" and second["inputs"] == ()


@pytest.fixture
def vgg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = torch_home_with_vgg(tmp_path / "torch")
    monkeypatch.setenv("TORCH_HOME", str(home))  # the job's process inherits it
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def test_a_fast_swap_model_trains_on_from_the_screen_with_its_losses(
    ws: Path, ui, vgg_home: None, stop_leftovers
) -> None:
    # Made here with a lighting network that trains in 2 steps: the form has no row for it.
    small = {"light_steps": 2, "style_photos": 6, "n_best": 2, "batch_size": 2}
    settings = new_settings(
        {"preset": "fast-swap-small", "faceset_b": "b", "inputs": ("c",), **small}
    )
    create_model(settings, ModelPaths(Workspace(ws).model_dir("fs")))

    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        await ui.until(pilot, lambda: screen.has_class("-inputs"), 10)
        face_a = screen.query_one("#faceset-a", Select)
        assert screen.query_one("#preset", Select).value == "fast-swap-small"
        assert screen.query_one("#preset").disabled and face_a.disabled  # frozen
        assert face_a.value is Select.NULL and face_a.prompt == "none"
        assert form_inputs(screen) == (["a", "c"], ["c"])  # the model's own inputs
        assert not screen.query_one("#inputs").disabled  # unfrozen: may change
        await _toggle(pilot, screen, "a")  # all ticked now: every faceset but B's
        await ui.type_into(pilot, "#steps", "4")
        await pilot.press("escape", "s")

        chart = screen.query_one(LossChart)
        await ui.until(pilot, lambda: screen.following, 60)
        await ui.until(pilot, lambda: len(chart.steps) >= 2, 180)
        assert list(chart.series) == LOSSES
        await ui.until(pilot, lambda: not screen.following, 180)
        job = screen.job
        assert job is not None and jobs.get_job(Workspace(ws), job.id).state == "finished"
        assert chart.steps == [1, 2, 3, 4]
        await ui.until(pilot, lambda: "step    4" in _text(screen, "#stats"), 10)
        stats = _text(screen, "#stats")
        for name in LOSSES:
            assert f"\n{name:<8}" in stats and f"\n{name:<8}—" not in stats, stats
        preview = screen.query_one(PreviewImage)
        await ui.until(pilot, lambda: preview.loaded_path is not None, 30)

    ui.drive(SwapdeckApp(ws), steps)
    toml = read_toml(ws / "models" / "fs" / "model.toml")
    assert toml["inputs"] == [] and "faceset_a" not in toml
