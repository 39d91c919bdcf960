"""SIGKILL a training run (mid-step and mid-save); the next run resumes cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.train.checkpoint import read_info
from engine.workspace import Workspace

pytestmark = pytest.mark.slow

SWAPDECK = str(Path(sys.executable).with_name("swapdeck"))


def _copy(sample_workspace: Workspace, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


def _start(ws: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            SWAPDECK,
            "train",
            "-w",
            str(ws),
            "-m",
            "k",
            "-a",
            "a",
            "-b",
            "b",
            "--preset",
            "tiny",
            "--batch-size",
            "4",
            "--log-every",
            "1",
            "--json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float = 120.0, every: float = 0.0005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def _resume_and_check(ws: Path, model: Path) -> None:
    step = read_info(model / "checkpoint.safetensors")["step"]
    done = subprocess.run(
        [
            SWAPDECK,
            "train",
            "-w",
            str(ws),
            "-m",
            "k",
            "--steps",
            str(step + 3),
            "--log-every",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    started = next(json.loads(x) for x in done.stdout.splitlines() if '"started"' in x)
    assert started["detail"]["start_step"] == step  # resumed from the last complete save
    finished = json.loads(done.stdout.splitlines()[-1])
    assert finished["type"] == "finished" and finished["result"]["steps"] == step + 3
    steps = [json.loads(x)["step"] for x in (model / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "duplicate or out-of-order steps in metrics.jsonl"
    assert steps[-1] == step + 3
    assert not list(model.glob(".*.tmp")), "a half-written file was left behind"


def test_kill_during_a_save_keeps_the_last_checkpoint(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    model = ws / "models" / "k"
    proc = _start(ws, "--steps", "100000", "--save-every", "1", "--snapshot-every", "0")
    try:
        assert _wait_for(lambda: (model / "checkpoint.safetensors").exists())
        # A temporary checkpoint exists only while a save is under way: kill right then.
        caught = _wait_for(lambda: any(model.glob(".checkpoint.safetensors.*.tmp")))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert caught, "never saw a save in progress"
    assert read_info(model / "checkpoint.safetensors")["step"] >= 0
    _resume_and_check(ws, model)


def test_kill_mid_training_loses_only_the_steps_since_the_save(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    model = ws / "models" / "k"
    proc = _start(ws, "--steps", "100000", "--save-every", "5")
    try:

        def logged() -> int:
            path = model / "metrics.jsonl"
            return len(path.read_text().splitlines()) if path.exists() else 0

        assert _wait_for(lambda: logged() >= 8, every=0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    step = read_info(model / "checkpoint.safetensors")["step"]
    assert step >= 5 and step % 5 == 0
    _resume_and_check(ws, model)
