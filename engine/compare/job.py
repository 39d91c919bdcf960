"""`compare` as a detached job: a dropped connection loses nothing, a rerun resumes."""

from __future__ import annotations

import threading
from typing import Any

from engine.config import CompareConfig
from engine.errors import BadInputError, CancelledError
from engine.events import CancelToken, Sink
from engine.jobs import JobKind, list_jobs, register_kind
from engine.workspace import Workspace


def _run(
    workspace: Workspace,
    name: str,
    spec: dict[str, Any],
    sink: Sink,
    cancel: CancelToken,
    _save_request: threading.Event,
) -> dict[str, Any]:
    from engine.compare.run import compare

    try:
        result = compare(CompareConfig(**spec), workspace, sink, cancel)
    except CancelledError:
        if not cancel.cancelled:
            raise
        return {"name": name, "stopped": True}
    return result.model_dump(mode="json")


def _command(workspace: Workspace, _name: str, spec: dict[str, Any]) -> list[str]:
    from engine.compare.run import command_line

    return command_line(workspace, CompareConfig(**spec))


def _check(workspace: Workspace, name: str) -> None:
    """One compare of a name at a time (its report folder's lock says so too)."""
    for job in list_jobs(workspace):
        if job.kind == "compare" and job.model == name and job.running:
            raise BadInputError(
                f"compare {name} is already running as job {job.id}",
                f"follow it with 'swapdeck jobs attach {job.id}'",
            )


KIND = register_kind(
    JobKind(
        name="compare",
        run=_run,
        command=_command,
        target="compare",
        check=_check,
        restart_hint="run the same compare again: it goes on where it stopped",
    )
)
