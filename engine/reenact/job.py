"""`reenact` as a detached job: a long driving video outlives the terminal."""

from __future__ import annotations

import threading
from typing import Any

from engine.config import ReenactConfig
from engine.errors import CancelledError
from engine.events import CancelToken, Sink
from engine.jobs import JobKind, register_kind
from engine.workspace import Workspace


def _run(
    workspace: Workspace,
    _model: str,
    spec: dict[str, Any],
    sink: Sink,
    cancel: CancelToken,
    _save_request: threading.Event,
) -> dict[str, Any]:
    from engine.reenact.run import reenact

    try:
        result = reenact(ReenactConfig(**spec), workspace, sink, cancel)
    except CancelledError:
        if not cancel.cancelled:
            raise
        # Nothing was written: the outputs appear only when complete.
        return {"stopped": True, "outputs": []}
    return result.model_dump(mode="json")


def command_line(workspace: Workspace, config: ReenactConfig) -> list[str]:
    """The `swapdeck reenact` line that does the same."""
    line = ["swapdeck", "reenact", str(config.source), str(config.driving)]
    line += ["-w", str(workspace.root), "-m", config.model, "-o", str(config.output)]
    defaults = ReenactConfig(
        source=config.source, driving=config.driving, output=config.output, model=config.model
    )
    for key in ("adapt_scale", "best_frame", "paste_back", "overwrite"):
        if getattr(config, key):
            line.append(f"--{key.replace('_', '-')}")
    if not config.relative:
        line.append("--absolute")
    for key in ("start", "end", "preview_frames", "backend", "batch_size", "device"):
        value = getattr(config, key)
        if value != getattr(defaults, key):
            line += [f"--{key.replace('_', '-')}", str(value)]
    return line


def _command(workspace: Workspace, _model: str, spec: dict[str, Any]) -> list[str]:
    return command_line(workspace, ReenactConfig(**spec))


KIND = register_kind(
    JobKind(
        name="reenact",
        run=_run,
        command=_command,
        restart_hint="run it again: nothing was written, the outputs appear only when complete",
    )
)
