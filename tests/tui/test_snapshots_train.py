"""Snapshots of the Train screen at 80x24: idle, and showing a finished model's run.

Deterministic: the app runs in a fixed folder and is given the relative path
"ws"; no job runs; the model's metrics are written here, not trained; no GPU is
shown (NVML is asked on a GPU box too, so its answer is pinned to none); and no
preview image, whose drawing depends on the terminal the tests run in.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot

from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.train import TrainScreen
from tui.widgets.loss_chart import LossChart
from tui.widgets.train_stats import TrainStats

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture
def snap_ws(sample_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "snap"
    (folder / "ws").mkdir(parents=True)
    shutil.copytree(sample_workspace.facesets_dir, folder / "ws" / "facesets")
    monkeypatch.chdir(folder)
    monkeypatch.setattr("tui.widgets.gpu_panel.gpu_stats", lambda: [])
    return folder / "ws"


def _write_finished_model(ws: Path) -> None:
    model = ws / "models" / "demo"
    model.mkdir(parents=True)
    (model / "model.toml").write_text(
        'preset = "tiny"\nsize = 64\nlayout = "df"\nfaceset_a = "a"\nfaceset_b = "b"\n'
        "batch_size = 16\nlr = 0.0003\n"
    )
    with open(model / "metrics.jsonl", "w", encoding="utf-8") as fh:
        for step in range(10, 3010, 10):
            record = {
                "step": step,
                "loss_a": round(0.05 + 0.4 * math.exp(-step / 600) + 0.01 * math.sin(step), 6),
                "loss_b": round(0.06 + 0.5 * math.exp(-step / 500) + 0.01 * math.cos(step), 6),
                "examples_per_s": 512.5,
                "lr": 0.0003,
                "memory_mb": 0.0,
                "t": 1700000000.0 + step,
            }
            fh.write(json.dumps(record) + "\n")


def _train_screen_settled(ui, points: int):
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("t")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
        await ui.settle(pilot)
        screen = pilot.app.screen
        chart, stats = screen.query_one(LossChart), screen.query_one(TrainStats)
        # The chart and the stats redraw on a timer: wait for their last redraw.
        drawn = lambda: not (chart.redraw.pending or stats.redraw.pending)  # noqa: E731
        await ui.until(pilot, lambda: len(chart.steps) == points and drawn())
        await pilot.pause()

    return run_before


def test_train_screen_idle(snap_ws: Path, snap_compare, ui) -> None:
    assert snap_compare(
        SwapdeckApp(Path("ws")), terminal_size=(80, 24), run_before=_train_screen_settled(ui, 0)
    )


def test_train_screen_with_a_finished_run(snap_ws: Path, snap_compare, ui) -> None:
    _write_finished_model(snap_ws)
    assert snap_compare(
        SwapdeckApp(Path("ws")), terminal_size=(80, 24), run_before=_train_screen_settled(ui, 300)
    )
