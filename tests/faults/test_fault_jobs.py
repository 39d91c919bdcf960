"""SIGKILL a detached training job's process at start-up, mid-training and mid-save.

Each time `swapdeck jobs list` (table and --json) must show the job failed with
a reason naming the kill, `jobs attach` must end on that failure, no lock may be
left on the model, and the next detached run of the same model must start at
once and resume from the last checkpoint the killed one completed.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from cliutil import plain, swapdeck
from faultutil import wait_for

from engine.locks import lock_holder
from engine.train.checkpoint import read_info
from engine.workspace import Workspace

pytestmark = [pytest.mark.report("killed jobs reported and restarted cleanly"), pytest.mark.slow]

MOMENTS = ("start-up", "mid-training", "mid-save")
TRAIN = ["-m", "m", "-a", "a", "-b", "b", "--preset", "tiny", "--batch-size", "4"]
RUN = ["--log-every", "1", "--save-every", "3", "--preview-every", "1000", "--snapshot-every", "0"]


def _start(ws: Path, steps: int) -> dict[str, Any]:
    done = swapdeck("train", "-w", ws, *TRAIN, *RUN, "--steps", str(steps), "--detach", "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _listed(ws: Path, job_id: str) -> dict[str, Any]:
    done = swapdeck("jobs", "list", "-w", ws, "--json")
    assert done.exit_code == 0, done.output
    return next(j for j in json.loads(done.stdout) if j["id"] == job_id)


def _events(ws: Path, job_id: str) -> list[dict[str, Any]]:
    path = ws / "jobs" / job_id / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _kill(ws: Path, job_id: str, moment: str) -> list[str]:
    """SIGKILL the job's process (the pid `jobs list` gives) at `moment`."""
    model = ws / "models" / "m"
    pid = _listed(ws, job_id)["pid"]

    def metrics() -> int:
        return sum(e["type"] == "metrics" for e in _events(ws, job_id))

    def saving() -> bool:  # a temporary checkpoint exists only while a save is under way
        return any(model.glob(".checkpoint.safetensors.*.tmp"))

    if moment == "mid-training":
        assert wait_for(lambda: metrics() >= 2, every=0.05), "no steps logged"
    elif moment == "mid-save":
        assert wait_for(lambda: metrics() >= 1, every=0.05), "no steps logged"
        assert wait_for(saving, every=0.0005), "never saw a checkpoint being written"
    os.kill(pid, signal.SIGKILL)
    if moment == "mid-save" and not saving():
        return ["the kill did not land during a save"]
    return []


def _check_reported(ws: Path, job_id: str) -> list[str]:
    """What is wrong with how the killed job is shown; nothing when all is well."""
    problems = []
    listed = wait_for(lambda: (j := _listed(ws, job_id))["state"] != "running" and j, every=0.2)
    if not listed or listed["state"] != "failed":
        return [f"the killed job shows as {listed and listed['state']}"]
    if "killed by signal 9 (SIGKILL)" not in listed["reason"]:
        problems.append(f"vague reason: {listed['reason']!r}")
    if listed["exit_code"] != 128 + signal.SIGKILL:
        problems.append(f"exit code {listed['exit_code']}, not 137")
    table = swapdeck("jobs", "list", "-w", ws)  # the console is wide: a row is one line
    row = [line for line in plain(table.stdout).splitlines() if job_id in line]
    if not row or "failed" not in row[0] or "SIGKILL" not in row[0]:
        problems.append(f"`jobs list` does not say it was killed:\n{table.stdout}")
    attach = swapdeck("jobs", "attach", job_id, "-w", ws, "--json")
    last = json.loads(attach.stdout.splitlines()[-1]) if attach.stdout.strip() else {}
    if attach.exit_code != 137 or last.get("type") != "failed" or "SIGKILL" not in str(last):
        problems.append(f"`jobs attach` ends with {attach.exit_code}, {last}")
    if lock_holder(Workspace(ws), "m") is not None:
        problems.append("the model is still locked by the killed job")
    return problems


def test_killed_jobs_are_reported_and_the_model_restarts(facesets_ws, record_property, monkeypatch):
    # The CLI's console took its width when engine.cli was first imported, in whichever
    # test came first: widen it itself, so a row is one line whatever ran before.
    from engine.cli.common import out_console

    monkeypatch.setattr(out_console, "_width", 300)
    record_property("tried", len(MOMENTS))
    record_property("ok", 0)
    ws = facesets_ws
    checkpoint = ws / "models" / "m" / "checkpoint.safetensors"
    problems: list[list[str]] = []
    pending: list[list[str]] = []  # trials whose last check is the next job's start
    step = 0
    for moment in [*MOMENTS, "finish"]:
        job = _start(ws, step + 3 if moment == "finish" else 100000)
        if moment == "finish":
            attach = swapdeck("jobs", "attach", job["id"], "-w", ws, "--json")
            assert attach.exit_code == 0, attach.output
        else:
            problems.append([])
            problems[-1] += _kill(ws, job["id"], moment)
            problems[-1] += _check_reported(ws, job["id"])
        # The job before ends well when this one trains on from its last checkpoint.
        if started := [e for e in _events(ws, job["id"]) if e["type"] == "started"]:
            got = started[0]["detail"]["start_step"]
            for trial in pending:
                if got != step:
                    trial.append(f"the next job resumed at step {got}, not {step}")
            pending = []
        if moment == "finish":
            break
        step = read_info(checkpoint)["step"] if checkpoint.exists() else 0
        pending.append(problems[-1])
    for trial in pending:
        trial.append("no later job started training")

    tried, ok = len(MOMENTS), sum(not p for p in problems)
    record_property("tried", tried)
    record_property("ok", ok)
    assert ok == tried, dict(zip(MOMENTS, problems, strict=True))
    events = _events(ws, job["id"])
    assert events[-1]["type"] == "finished" and events[-1]["result"]["steps"] == step + 3
    assert _listed(ws, job["id"])["state"] == "finished"
