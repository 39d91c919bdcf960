"""The Train screen with the real engine: start, watch, save, stop, detach, re-attach.

Jobs here are real detached processes training the tiny preset on the sample
facesets (batch 4, so steps are quick on a CPU). Every test stops what it started.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from engine import jobs
from engine.config import RunSettings, build
from engine.events import Metrics
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.train import JobEvents, TrainScreen
from tui.widgets.loss_chart import LossChart
from tui.widgets.preview_image import PreviewImage


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    return facesets_ws


@pytest.fixture
def stop_leftovers(ws: Path):
    """Whatever a failing test leaves running is stopped, never left to eat the CPU."""
    yield
    for job in jobs.list_jobs(Workspace(ws)):
        if job.running:
            with contextlib.suppress(Exception):
                jobs.stop_job(Workspace(ws), job.id, timeout=60, force=True)


def _text(pilot: Pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


async def _open_train(pilot: Pilot, ui) -> TrainScreen:
    await pilot.press("t")
    await ui.until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
    return pilot.app.screen


@pytest.mark.slow
def test_start_watch_save_and_stop_from_the_screen(ws: Path, ui, stop_leftovers) -> None:
    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        await ui.until(pilot, lambda: screen.query_one("#faceset-b").value == "b", 10)
        for selector, text in (("#model", "ui"), ("#steps", "100"), ("#batch", "4")):
            await ui.type_into(pilot, selector, text)
        await pilot.press("escape", "s")  # leave the field, then the screen's Start key
        chart = screen.query_one(LossChart)
        preview = screen.query_one(PreviewImage)
        await ui.until(pilot, lambda: screen.following and len(chart.steps) >= 3, 180)
        # Metrics every 2 steps of 100; the first preview at step 25.
        await ui.until(pilot, lambda: preview.loaded_path is not None, 180)
        assert preview.loaded_path == ws / "models" / "ui" / "previews" / "latest.png"
        assert chart.steps == sorted(set(chart.steps)) and chart.steps[0] == 2
        # The stats panel redraws at most twice a second: it shows a recent step, not the last.
        await ui.until(pilot, lambda: "/ 100" in _text(pilot, "#stats"), 30)
        stats = _text(pilot, "#stats")
        shown = int(stats.split("step", 1)[1].split("/")[0])
        assert shown in chart.steps
        assert "ex/s" in stats and "speed   —" not in stats
        job = screen.job
        assert job is not None and job.model == "ui" and jobs.get_job(Workspace(ws), job.id).running

        await pilot.press("n")  # save now: a checkpoint at the next step
        await ui.until(pilot, lambda: "(requested)" in _text(pilot, "#status"), 120)

        await pilot.press("x")
        await ui.until(pilot, lambda: not screen.following and not screen.stopping, 180)
        final = jobs.get_job(Workspace(ws), job.id)
        assert final.state == "stopped"
        assert (ws / "models" / "ui" / "checkpoint.safetensors").is_file()
        assert "stopped" in _text(pilot, "#job") and "stopped" in _text(pilot, "#status")
        assert screen.check_action("start", ()) is True  # the form is free again

    ui.drive(SwapdeckApp(ws), steps)


def _start_outside(ws: Path, model: str) -> jobs.Job:
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "batch_size": 4}
    run = build(RunSettings, steps=100000, log_every=2, preview_every=100000)
    return jobs.start_train(Workspace(ws), model, requested, run)


def _logged_steps(job: jobs.Job) -> list[int]:
    try:
        lines = job.events_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(x)["step"] for x in lines if '"metrics"' in x]


@pytest.mark.slow
def test_reopening_reattaches_with_history_and_leaving_never_stops(
    ws: Path, ui, stop_leftovers
) -> None:
    job = _start_outside(ws, "bg")
    deadline = time.monotonic() + 180
    while len(_logged_steps(job)) < 3:  # some history before the screen opens
        assert time.monotonic() < deadline, "the job logged no steps"
        time.sleep(0.25)
    before = _logged_steps(job)

    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        chart = screen.query_one(LossChart)
        await ui.until(pilot, lambda: screen.following and len(chart.steps) >= len(before), 60)
        assert screen.job is not None and screen.job.id == job.id
        assert chart.steps[: len(before)] == before  # the replayed history, in order
        assert screen.query_one("#model", Input).value == "bg"
        assert job.id in _text(pilot, "#job") and "following" in _text(pilot, "#job")

        # Following costs the wizard little: files read a few times a second, no busy loop.
        cpu, wall = time.process_time(), time.monotonic()
        await pilot.pause(3)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert share < 0.25, f"the wizard used {share:.0%} of a core while following"

        await pilot.press("d")
        await ui.until(pilot, lambda: not screen.following, 10)
        assert "detached" in _text(pilot, "#job")
        assert jobs.get_job(Workspace(ws), job.id).running
        shown = len(chart.steps)
        await pilot.pause(1.5)
        assert len(chart.steps) == shown  # no longer following

        await pilot.press("a")
        await ui.until(pilot, lambda: screen.following and len(chart.steps) > shown, 60)

    ui.drive(SwapdeckApp(ws), steps)
    # The app has quit, the screen is gone: the job trains on.
    time.sleep(0.5)
    assert jobs.get_job(Workspace(ws), job.id).running
    assert jobs.stop_job(Workspace(ws), job.id).state == "stopped"


def test_a_burst_of_events_collapses_without_losing_a_point(
    tmp_path: Path, ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying a long history posts thousands of messages at once; the chart needs them all."""
    merges = []
    merge = JobEvents.can_replace

    def counted(self: JobEvents, message: object) -> bool:
        merged = merge(self, message)
        merges.append(merged)
        return merged

    monkeypatch.setattr(JobEvents, "can_replace", counted)

    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        await ui.settle(pilot)
        screen.following = True  # as if attached to a job

        def post() -> None:
            for step in range(1, 2001):
                event = Metrics(step=step, losses={"a": 1 / step, "b": 2 / step})
                screen.post_message(JobEvents(screen._generation, [event]))

        thread = threading.Thread(target=post)
        thread.start()
        thread.join()  # blocks the app's loop too: all 2000 are queued before any is handled
        chart = screen.query_one(LossChart)
        await ui.until(pilot, lambda: len(chart.steps) == 2000, 30)
        assert chart.steps == list(range(1, 2001))
        assert chart.series["b"][-1] == pytest.approx(2 / 2000)
        await ui.until(pilot, lambda: "step    2000" in _text(pilot, "#stats"), 5)  # redrawn
        screen.following = False

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)
    assert merges.count(True) > 1000  # most were merged rather than handled one by one


def test_idle_screen_shows_a_models_earlier_runs(tmp_path: Path, ui) -> None:
    model = tmp_path / "ws" / "models" / "old"
    model.mkdir(parents=True)
    (model / "model.toml").write_text(
        'preset = "tiny"\nsize = 64\nlayout = "df"\nfaceset_a = "a"\nfaceset_b = "b"\n'
        "batch_size = 16\n"
    )
    with open(model / "metrics.jsonl", "w") as fh:
        for step in range(10, 510, 10):
            record = {"step": step, "loss_a": 1 / step, "loss_b": 2 / step, "lr": 3e-4}
            fh.write(json.dumps({**record, "examples_per_s": 100.0}) + "\n")
        fh.write("not json\n")  # a torn line is skipped

    async def steps(pilot: Pilot) -> None:
        screen = await _open_train(pilot, ui)
        await ui.settle(pilot)
        await pilot.pause(0.7)
        assert screen.query_one("#model", Input).value == "old"
        assert screen.query_one("#preset").disabled  # frozen settings of an existing model
        chart = screen.query_one(LossChart)
        assert chart.steps == list(range(10, 510, 10))
        stats = _text(pilot, "#stats")
        assert "step    500" in stats and "100.0 ex/s" in stats and "3.0e-04" in stats
        assert screen.query_one(PreviewImage).loaded_path is None
        assert not screen.following

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)
