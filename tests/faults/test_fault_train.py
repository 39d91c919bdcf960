"""SIGKILL a `tiny` training run at many random moments; every resume loses nothing saved.

One model is trained by a chain of real `swapdeck train` processes, each killed
at a moment drawn from a seeded generator: during start-up, after some logged
steps, or exactly while a checkpoint or a snapshot is being written. After each
kill the checkpoint must read, hold a step between the last save seen and the
last step logged (so at most the steps since the last save are lost), and the
next run must start from exactly that step with no half-written file left (in
previews/ and snapshots/ too). A last run finishes; its metrics history must
then count every step once, in order.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest
from faultutil import Running, copy_workspace, temp_files, wait_for

from engine.errors import SwapdeckError
from engine.train.checkpoint import read_info

pytestmark = [pytest.mark.report("training kills survived"), pytest.mark.slow]

SAVE_EVERY = 3
KILLS = ["startup"] * 3 + ["steps"] * 4 + ["save"] * 4 + ["snapshot"]
TRAIN = ["-m", "k", "-a", "a", "-b", "b", "--preset", "tiny", "--batch-size", "4"]
RUN = ["--log-every", "1", "--save-every", str(SAVE_EVERY), "--preview-every", "5"]
RUN += ["--snapshot-every", "6", "--json"]
_SAVED = re.compile(r"checkpoint at step (\d+)")


def _logged(model: Path) -> list[int]:
    """The steps metrics.jsonl holds (a line cut by the kill is no step)."""
    path = model / "metrics.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r'\{"step": (\d+),.*\}$', line)
        if match:
            steps.append(int(match.group(1)))
    return steps


def _checkpoint_step(model: Path) -> int:
    """The step of the checkpoint on disk; 0 when no save has finished yet."""
    path = model / "checkpoint.safetensors"
    return int(read_info(path)["step"]) if path.exists() else 0


def _saving(model: Path, stale: set[Path], kind: str = "save") -> bool:
    """Is a checkpoint (or snapshot) being written now (a temporary one not a killed run's)?"""
    pattern = ".checkpoint.safetensors.*.tmp" if kind == "save" else "snapshots/.step_*.tmp"
    return any(p not in stale for p in model.glob(pattern))


def _kill_at(
    run: Running, kind: str, model: Path, rng: random.Random, stale: set[Path]
) -> str | None:
    """Kill `run` at a moment of `kind`; a problem when that moment never came."""
    if kind == "startup":
        time.sleep(rng.uniform(0.3, 3.5))  # the torch import and set-up take a few seconds
        run.kill()
        return None
    steps = rng.randint(1, 5) if kind == "steps" else rng.randint(0, 2)
    reached = wait_for(lambda: len(run.of("metrics")) >= steps or run.proc.poll() is not None)
    if not reached or run.proc.poll() is not None:
        run.kill()
        return f"never logged {steps} steps: {run.stderr[-500:]}"
    if kind == "steps":
        time.sleep(rng.uniform(0.0, 0.4))
        run.kill()
        return None
    # A temporary checkpoint exists only while a save is under way: kill right then.
    saving = wait_for(lambda: _saving(model, stale, kind), every=0.0005)
    run.kill()
    return None if saving else f"never saw a {kind} being written"


def _after_kill(
    model: Path, kind: str, run: Running, floor: int, stale: set[Path]
) -> tuple[int, list[str]]:
    """Check what the kill left; returns (checkpoint step, problems)."""
    problems = []
    try:
        step = _checkpoint_step(model)
    except SwapdeckError as exc:
        return -1, [f"checkpoint unreadable after the kill: {exc.one_line()}"]
    if kind in ("save", "snapshot") and not _saving(model, stale, kind):
        problems.append(f"the kill did not land during a {kind} write")
    saved = [int(m.group(1)) for e in run.of("saved") if (m := _SAVED.search(e["what"]))]
    last_save = max([floor, *saved])
    top = max([floor, *_logged(model)])
    if not last_save <= step <= top:
        problems.append(f"checkpoint step {step} is not between {last_save} and {top}")
    if top - step > SAVE_EVERY:
        problems.append(f"lost {top - step} steps, more than the {SAVE_EVERY} since a save")
    if step % SAVE_EVERY:
        problems.append(f"checkpoint at step {step}, not a saved step")
    return step, problems


def test_training_survives_random_kills(sample_workspace, tmp_path, record_property):
    ws = copy_workspace(sample_workspace.root, tmp_path)
    model = ws / "models" / "k"
    rng = random.Random(6)
    kills = KILLS[:]
    rng.shuffle(kills)
    record_property("tried", len(kills))
    record_property("ok", 0)
    problems: list[list[str]] = []
    # Trials whose last check (the next start) is still to come; a run killed before it
    # said Started passes them on to the one after.
    pending: list[int] = []
    step, stale = 0, set()
    for kind in [*kills, "finish"]:
        steps = str(step + 4) if kind == "finish" else "100000"
        with Running("train", "-w", ws, *TRAIN, *RUN, "--steps", steps) as run:
            if kind == "finish":
                code = run.finish()
            else:
                problems.append([])
                if missed := _kill_at(run, kind, model, rng, stale):
                    problems[-1].append(missed)
        if started := run.of("started"):
            got = started[0]["detail"]["start_step"]
            left = [p.name for p in stale if p.exists()]
            for j in pending:
                if got != step:
                    problems[j].append(f"the next run started at step {got}, not {step}")
                if left:
                    problems[j].append(f"half-written files left once it started: {left}")
            pending, stale = [], set()
        if kind == "finish":
            break
        step, found = _after_kill(model, kind, run, step, stale)
        problems[-1] += found
        pending.append(len(problems) - 1)
        stale |= temp_files(model)
    for j in pending:
        problems[j].append(f"the last run never started: {run.stderr[-500:]}")

    tried = len(kills)
    ok = sum(not p for p in problems)
    record_property("tried", tried)
    record_property("ok", ok)
    failed = {
        f"{i} ({kind})": p for i, (kind, p) in enumerate(zip(kills, problems, strict=True)) if p
    }
    assert ok == tried, failed

    assert code == 0, run.stderr[-2000:]
    assert run.of("finished")[0]["result"]["steps"] == step + 4
    # Every step logged once, in order, none missing, however often the run was cut.
    assert _logged(model) == list(range(1, step + 5))
    assert not temp_files(model)
    assert _checkpoint_step(model) == step + 4
