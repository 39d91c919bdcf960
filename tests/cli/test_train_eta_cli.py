"""The CLI shows the ETA the engine computed, not one of its own from the step cap.

A time-limited stint with a huge step cap must not read as hours (the engine's
`eta_s` already follows whichever limit ends the run); other stages, whose events
carry no ETA, keep Rich's estimate from the bar.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cliutil import swapdeck
from rich.console import Console

import engine.cli.common as common
from engine.events import Metrics, Progress


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=buf, width=200))
    return buf


def test_train_bar_shows_the_engines_eta(stderr: io.StringIO) -> None:
    reporter = common.Reporter(as_json=False)
    # A billion-step cap, 100 s of time limit left: the engine says 100 s.
    for step, eta in ((10, 110.0), (20, 100.0)):
        reporter(
            Metrics(
                step=step,
                losses={"a": 0.5, "b": 0.6},
                examples_per_s=8.0,
                extra={"total_steps": 1e9, "eta_s": eta},
            )
        )
    reporter.close()
    line = stderr.getvalue().strip().splitlines()[-1]
    assert line.endswith("0:01:40"), line


def test_other_stages_keep_the_bar_estimate(stderr: io.StringIO) -> None:
    reporter = common.Reporter(as_json=False)
    reporter(Progress(stage="extract", done=3, total=10, unit="frames"))
    reporter.close()
    line = stderr.getvalue().strip().splitlines()[-1]
    assert line.endswith("-:--:--"), line  # Rich's own, with too little seen to guess


@pytest.mark.slow
def test_a_detached_jobs_events_carry_the_time_limits_eta(facesets_ws: Path) -> None:
    """`train --detach` with a billion-step cap and a short time limit: every Metrics
    event in the job's events says no more than the time limit has left."""
    limit = 20.0
    started = swapdeck(
        "train", "-w", facesets_ws, "-m", "eta", "-a", "a", "-b", "b", "--preset", "tiny",
        "--batch-size", "4", "--steps", "1000000000", "--time-limit", str(limit),
        "--log-every", "2", "--preview-every", "1000000", "--save-every", "1000000",
        "--detach", "--json",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    job = json.loads(started.stdout.splitlines()[-1])["id"]
    # attach follows the job to its end, replaying its events.jsonl as JSON lines.
    attached = swapdeck("jobs", "attach", job, "-w", facesets_ws, "--json")
    assert attached.exit_code == 0, attached.output
    events = [json.loads(line) for line in attached.stdout.splitlines() if line.startswith("{")]
    metrics = [e for e in events if e["type"] == "metrics"]
    assert metrics, attached.stdout
    first = metrics[0]["t"]  # the run's clock started before its first Metrics event
    for m in metrics:
        left = max(0.0, limit - (m["t"] - first))
        assert m["extra"]["eta_s"] <= left + 0.2, (m["step"], m["extra"]["eta_s"], left)
    (finished,) = [e for e in events if e["type"] == "finished"]
    assert finished["result"]["stopped"]
