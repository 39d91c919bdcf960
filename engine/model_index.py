"""The models of a workspace as they stand on disk: settings and training history.

Cheap to call (no torch, no weights loaded): the wizard lists models and plots
their history with it while a job trains them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from engine.config import read_toml
from engine.errors import SwapdeckError
from engine.workspace import Workspace


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """models/<name>/metrics.jsonl, one record per logged step; bad lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        with contextlib.suppress(*_BAD_LINE):
            record = json.loads(line)
            if isinstance(record, dict) and _is_step(record.get("step")):
                records.append(record)
    return records


# What json.loads and int() raise on a damaged or hostile line: bad JSON, nesting too
# deep for the parser, a step that is not a number, or an infinite one.
_BAD_LINE = (ValueError, KeyError, TypeError, OverflowError, RecursionError)


def _is_step(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def last_step(metrics: Path) -> int | None:
    """The step on the last line of metrics.jsonl, reading only the file's tail."""
    try:
        with open(metrics, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        step = step_of(line)
        if step is not None:
            return step
    return None


def step_of(line: str | bytes) -> int | None:
    """The step a metrics record (a metrics.jsonl line or a metrics event) holds, or
    None for a damaged or hostile line."""
    with contextlib.suppress(*_BAD_LINE):
        record = json.loads(line)
        step = record.get("step") if isinstance(record, dict) else None
        if _is_step(step):
            return step
    return None


def model_summary(folder: Path) -> dict[str, Any]:
    """Name, family, preset, size, facesets, last logged step and whether it has weights."""
    settings = read_toml(folder / "model.toml")
    return {
        "name": folder.name,
        "family": settings.get("family", "autoencoder"),  # older models name none
        "preset": settings.get("preset", "?"),
        "size": settings.get("size"),
        "faceset_a": settings.get("faceset_a", ""),
        "faceset_b": settings.get("faceset_b", ""),
        "step": last_step(folder / "metrics.jsonl"),
        "trained": (folder / "checkpoint.safetensors").is_file(),
    }


def list_models(workspace: Workspace) -> list[dict[str, Any]]:
    """Every model of the workspace with a readable model.toml, by name."""
    models = workspace.models_dir
    if not models.is_dir():
        return []
    out = []
    for folder in sorted(models.iterdir()):
        if (folder / "model.toml").is_file():
            with contextlib.suppress(SwapdeckError):  # a broken model.toml: not listed
                out.append(model_summary(folder))
    return out
