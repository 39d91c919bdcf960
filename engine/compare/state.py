"""A compare's progress on disk (REPORT/state.json), so that a rerun resumes.

Written atomically after every phase of every model: what it trained (each
stretch of training with its start, steps and seconds), and the results of its
convert, score and structure measurement with what they were made from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import CorruptError
from engine.workspace import atomic_write_text

STATE_VERSION = 1


class Segment(BaseModel):
    """One stretch of training by this compare."""

    model_config = ConfigDict(extra="forbid")

    start_step: int
    started: float  # wall clock (time.time()) of its first step: metrics' `t` is the same clock
    end_step: int | None = None  # None while it runs, or if it was killed
    seconds: float | None = None


class ModelState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str
    model: str
    budget: str = ""  # the budget `trained` refers to
    trained: bool = False
    segments: list[Segment] = []
    train: dict[str, Any] | None = None  # the last stretch's TrainResult
    device: str | None = None
    precision: str | None = None
    structure: dict[str, Any] | None = None
    convert_key: str | None = None  # what convert and score were made from
    convert: dict[str, Any] | None = None
    score: dict[str, Any] | None = None


class CompareState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = STATE_VERSION
    faceset_a: str
    faceset_b: str
    models: dict[str, ModelState] = {}
    seconds: float = 0.0  # of every run that ended, for the report
    runs: int = 0

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")


def load_state(path: Path) -> CompareState | None:
    if not path.exists():
        return None
    try:
        state = CompareState.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        raise CorruptError(
            f"{path} is not a compare's state file",
            "remove it to start this compare over, or write the report to another folder",
        ) from None
    if state.version != STATE_VERSION:
        raise CorruptError(
            f"{path} was written by another swapdeck version",
            "write the report to another folder",
        )
    return state
