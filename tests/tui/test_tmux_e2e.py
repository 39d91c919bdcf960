"""The wizard in a real terminal: tmux runs it, send-keys types, capture-pane reads.

The SSH story end to end: start training from the wizard, lose the terminal
(the tmux session is killed, as a dropped connection would), check the job
goes on, open a new wizard in a new terminal and find the same run, with its
loss history, then stop it from there with its checkpoint saved.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tui.widgets.train_stats import StatsView, render_stats

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.slow,
]

WIZARD = f"{sys.executable} -m tui wizard"  # what the `swapdeck` script runs


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, check=False, timeout=30
    ).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


# CI shares its machine: every wait is long, and the one for training steps ends only
# when the steps stop coming, not after a fixed time.
def wait_for(session: str, pattern: str, timeout: float = 300) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, screen(session))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared; the screen:\n{screen(session)}")


def open_wizard(session: str, ws: Path) -> None:
    tmux("kill-session", "-t", session)
    subprocess.run(
        # Started from outside the checkout, as an installed command would be.
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(ws.parent),
         f"{WIZARD} -w {ws}; sleep 60"],
        check=True, timeout=30,
    )  # fmt: skip
    wait_for(session, r"Facesets")


# The stats panel's own step line ("step    12 / 1000"), made from the widget's label;
# other text holds "step" too (the status's "saved checkpoint at step 0", the chart axis).
STEP_LINE = re.compile(re.escape(render_stats(StatsView()).splitlines()[0].rstrip("—")) + r"(\d+)")


def shown_step(session: str) -> int | None:
    found = STEP_LINE.search(screen(session))
    return int(found.group(1)) if found else None


def wait_for_step(session: str, at_least: int, stalled: float = 300) -> int:
    """Wait until the stats panel shows step `at_least`, however slowly the steps come;
    give up only when no new step has been shown for `stalled` seconds."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < stalled:
        step = shown_step(session)
        if step is not None and step >= at_least:
            return step
        if step != last:
            last, since = step, time.monotonic()
        time.sleep(0.3)
    raise AssertionError(f"step {at_least} never shown; the screen:\n{screen(session)}")


def press_binding(session: str, key: str, label: str) -> None:
    """Leave any text field, wait until the Footer offers `key` (it hides the screen's
    letter keys while a field has focus), then press it. Escape goes alone: a letter
    read together with it, as a busy machine may, would be Alt+letter."""
    press(session, "Escape")
    wait_for(session, rf"\b{re.escape(key)} {re.escape(label)}\b")
    press(session, key)


def chart_steps(session: str) -> list[int]:
    """The step numbers on the loss chart's x axis (the line under its frame's bottom)."""
    lines = screen(session).splitlines()
    for i, line in enumerate(lines):
        if "└" in line and "┬" in line and i + 1 < len(lines):
            return [int(n) for n in re.findall(r"\d+", lines[i + 1].split("│")[-1])]
    return []


def wait_for_chart(
    session: str, done: Callable[[list[int]], bool], timeout: float = 300
) -> list[int]:
    """The chart's step ticks once `done` holds for them (or the last seen, at the timeout)."""
    deadline = time.monotonic() + timeout
    ticks = chart_steps(session)
    while not done(ticks) and time.monotonic() < deadline:
        time.sleep(0.5)
        ticks = chart_steps(session)
    return ticks


def press(session: str, *keys: str) -> None:
    """Each key on its own, apart: an Escape followed at once by a letter reads as Alt+letter."""
    for key in keys:
        tmux("send-keys", "-t", session, key)
        time.sleep(0.4)


def jobs(ws: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "jobs", "list", "-w", str(ws), "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    return facesets_ws


def test_training_survives_the_terminal_and_a_new_wizard_reattaches(ws: Path) -> None:
    first, second = "swapdeck-e2e-1", "swapdeck-e2e-2"
    try:
        open_wizard(first, ws)
        press(first, "t")
        wait_for(first, r"Start training")
        press_binding(first, "s", "Start")
        step_before = wait_for_step(first, 20)
        (job,) = jobs(ws)
        assert job["state"] == "running" and job["model"]

        # The terminal goes away, the way a dropped SSH connection takes it.
        tmux("kill-session", "-t", first)
        time.sleep(2)
        (job,) = jobs(ws)
        assert job["state"] == "running"
        assert psutil.pid_exists(job["pid"])

        # A new terminal, a new wizard: the Train screen finds the run and its history.
        open_wizard(second, ws)
        press(second, "t")
        wait_for(second, re.escape(job["id"]))
        step_after = wait_for_step(second, step_before + 10)
        # Points from before this wizard existed are on the chart: the history was replayed.
        # The chart redraws at most once a second, after the stats: wait for it, not a time.
        ticks = wait_for_chart(second, lambda ticks: bool(ticks) and min(ticks) < step_before)
        assert ticks and min(ticks) < step_before, (ticks, screen(second))
        print(screen(second))  # the Train screen during a run, for the record

        # Stop it from the new wizard: the checkpoint is saved first.
        press_binding(second, "x", "Stop")
        # "stopped at step N; checkpoint saved" (the status may wrap it across two lines)
        wait_for(second, r"checkpoint saved")
        (job,) = jobs(ws)
        assert job["state"] == "stopped" and job["exit_code"] == 0
        from engine.train.checkpoint import read_info

        saved = read_info(ws / "models" / job["model"] / "checkpoint.safetensors")
        assert saved["step"] >= step_after
    finally:
        for session in (first, second):
            tmux("kill-session", "-t", session)
        for job in jobs(ws):
            if job["state"] == "running":
                psutil.Process(job["pid"]).kill()
