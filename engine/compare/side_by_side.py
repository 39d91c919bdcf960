"""Training a compare's models side by side, one process per device (several GPUs).

Each model trains in its own `swapdeck train --json` process on its own device
(what a user would start by hand), at most one per device at a time; their events
come back on stdout and go on to the compare's sink from this thread. A stop is
passed on as SIGINT, on which each process saves and ends. Converting and scoring
then run one model after another, as they do without side by side.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.compare.spec import Budget
from engine.compare.state import Segment
from engine.errors import SwapdeckError
from engine.events import Info, from_json
from engine.results import TrainResult
from engine.workspace import DIR_MODE

if TYPE_CHECKING:
    from engine.compare.run import Planned, _Compare

_DONE = object()  # a process's stdout has ended


@dataclass
class _Running:
    item: Planned
    device: str
    process: subprocess.Popen[str]
    segment: Segment
    result: TrainResult | None = None
    failed: Any = None  # its Failed event


def _read(stream: IO[str], key: str, out: queue.Queue) -> None:
    for line in stream:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.put((key, from_json(line)))
    out.put((key, _DONE))


def _start(run: _Compare, item: Planned, device: str, budget: Budget, out: queue.Queue):
    from engine.jobs import train_command

    begun = run.begin_training(item, run.state.models[item.spec.slug], budget, device)
    if begun is None:
        return None
    settings, segment = begun
    line = train_command(run.workspace, item.model, item.requested or {}, settings)
    logs = run.folder / "logs"
    logs.mkdir(exist_ok=True, mode=DIR_MODE)
    with open(logs / f"{item.spec.slug}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *line[1:], "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    threading.Thread(target=_read, args=(process.stdout, item.spec.slug, out), daemon=True).start()
    run.sink(Info(message=f"{item.spec.text}: training on {device}, side by side"))
    return _Running(item, device, process, segment)


def train_side_by_side(run: _Compare, planned: list[Planned], budget: Budget) -> None:
    """Train every model that needs it, one process per device at a time."""
    from engine.compare.state import ModelState

    waiting = [p for p in planned if p.requested is not None]
    for item in waiting:
        run.state.models.setdefault(
            item.spec.slug, ModelState(spec=item.spec.text, model=item.model)
        )
    free = list(run.devices)
    running: dict[str, _Running] = {}
    out: queue.Queue = queue.Queue()
    stopping = False
    failure: _Running | None = None
    try:
        while waiting or running:
            while free and waiting and not stopping:
                item = waiting.pop(0)
                started = _start(run, item, free[0], budget, out)
                if started is not None:
                    running[item.spec.slug] = started
                    free.pop(0)
            if not running:
                break  # all trained, or stopping with models left for a rerun
            if (run.cancel.cancelled or failure is not None) and not stopping:
                stopping = True
                for other in running.values():
                    with contextlib.suppress(ProcessLookupError):
                        other.process.send_signal(signal.SIGINT)
            try:
                slug, event = out.get(timeout=0.2)
            except queue.Empty:
                continue
            this = running[slug]
            if event is _DONE:
                this.process.wait()
                entry = run.state.models[slug]
                if this.result is not None:  # it ended its run, at its budget or stopped
                    run.end_training(entry, this.segment, this.result)
                    run.trained_now.add(slug)
                elif failure is None:
                    failure = this
                free.append(this.device)
                del running[slug]
                continue
            entry = run.state.models[slug]
            run.on_train_event(entry, this.segment, event)
            if event.type == "finished" and event.stage == "train":
                this.result = TrainResult.model_validate(event.result)
            elif event.type == "failed":
                this.failed = event
            run.sink(event)
    finally:
        for other in running.values():  # only after an error of our own
            with contextlib.suppress(ProcessLookupError):
                other.process.send_signal(signal.SIGINT)
            other.process.wait()
    if failure is not None and not run.cancel.cancelled:
        _raise(failure, run.folder / "logs" / f"{failure.item.spec.slug}.log")


def _raise(failed: _Running, log: Path) -> None:
    event = failed.failed
    message = event.message if event is not None else "its training process ended early"
    error = SwapdeckError(
        f"model {failed.item.spec.text} on {failed.device}: {message}",
        (event.hint if event is not None and event.hint else f"see {log}"),
    )
    error.exit_code = (event.exit_code if event is not None else 1) or 1
    raise error
