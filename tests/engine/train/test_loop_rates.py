"""What the loop reports about time: the whole run's rate, and an ETA that follows the
limit that actually ends the run (the step cap or the time limit)."""

from __future__ import annotations

import shutil

import pytest

from engine.config import RunSettings, build
from engine.events import Finished, Metrics, Started
from engine.results import TrainResult
from engine.train.loop import train
from engine.workspace import Workspace

NEW = {"faceset_a": "a", "faceset_b": "b", "preset": "tiny", "batch_size": 4}


def _copy(sample_workspace: Workspace, tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    return ws


@pytest.mark.slow
def test_finished_rate_is_the_whole_runs(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    events: list[object] = []
    # Previews and saves inside the run: they are part of what the run cost.
    run = build(RunSettings, steps=12, log_every=4, preview_every=4, save_every=4)
    train(ws, "m", NEW, run, events.append)
    (started,) = [e for e in events if isinstance(e, Started)]
    (finished,) = [e for e in events if isinstance(e, Finished)]
    result = TrainResult.model_validate(finished.result)  # the event's JSON, read typed

    detail = started.detail
    examples = (
        2 * detail["batch_size"] * detail["world_size"] * (result.steps - detail["start_step"])
    )
    # The run's seconds lie within what the events saw, from Started to Finished.
    assert 0 < result.seconds <= finished.t - started.t + 0.01
    assert result.examples_per_s == pytest.approx(examples / result.seconds, rel=0.01)
    # ... so the rate is no lower than that whole stretch allows.
    assert result.examples_per_s >= examples / (finished.t - started.t) * 0.99
    # The logging windows' rate is given beside it, under its own name.
    windows = [e.examples_per_s for e in events if isinstance(e, Metrics)]
    assert min(windows) * 0.99 <= result.examples_per_s_steady <= max(windows) * 1.01


@pytest.mark.slow
def test_eta_follows_the_time_limit_when_it_ends_the_run_first(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    events: list[object] = []
    limit = 4.0
    run = build(
        RunSettings,
        steps=1_000_000_000,
        log_every=1,
        time_limit=limit,
        save_every=10**9,
        preview_every=10**9,
    )
    result = train(ws, "m", NEW, run, events.append)
    assert result.stopped
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert metrics
    first = metrics[0].t  # the loop's clock started before the first Metrics event
    for m in metrics:
        left = limit - (m.t - first)
        assert 0 <= m.extra["eta_s"] <= max(0.0, left) + 0.2, (m.step, m.extra["eta_s"], left)


def test_eta_follows_the_step_cap_when_it_ends_the_run_first(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    events: list[object] = []
    run = build(RunSettings, steps=6, log_every=2, time_limit=3600.0, save_every=1000)
    train(ws, "m", NEW, run, events.append)
    metrics = [e for e in events if isinstance(e, Metrics)]
    # A generous hour of time limit does not show: the step cap is nearer.
    for m in metrics:
        per_step = 2 * NEW["batch_size"] / m.examples_per_s
        assert m.extra["eta_s"] == pytest.approx((6 - m.step) * per_step, rel=0.01, abs=0.05)
    assert metrics[-1].extra["eta_s"] == 0
