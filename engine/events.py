"""Typed events: the one channel from the engine to its front ends.

Long operations take a `Sink` (any callable accepting an event) and a
`CancelToken`. The CLI renders events with Rich or prints them as JSON lines,
a detached job appends them to events.jsonl, and the TUI turns them into
Textual messages. Nobody parses human-readable text.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter
from pydantic_core import PydanticSerializationError


class _Event(BaseModel):
    t: float = Field(default_factory=time.time)


class Started(_Event):
    type: Literal["started"] = "started"
    stage: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Progress(_Event):
    type: Literal["progress"] = "progress"
    stage: str
    done: int
    total: int | None = None
    unit: str = "items"
    counts: dict[str, float] = Field(default_factory=dict)


class Metrics(_Event):
    type: Literal["metrics"] = "metrics"
    step: int
    losses: dict[str, float] = Field(default_factory=dict)
    examples_per_s: float = 0.0
    extra: dict[str, float] = Field(default_factory=dict)


class Preview(_Event):
    type: Literal["preview"] = "preview"
    path: str


class Saved(_Event):
    type: Literal["saved"] = "saved"
    path: str
    what: str = ""


class Warning(_Event):
    type: Literal["warning"] = "warning"
    message: str
    hint: str = ""


class Info(_Event):
    type: Literal["info"] = "info"
    message: str


class Finished(_Event):
    type: Literal["finished"] = "finished"
    stage: str
    result: dict[str, Any] = Field(default_factory=dict)


class Failed(_Event):
    type: Literal["failed"] = "failed"
    stage: str
    message: str
    hint: str = ""
    exit_code: int = 1


Event = Annotated[
    Started | Progress | Metrics | Preview | Saved | Warning | Info | Finished | Failed,
    Field(discriminator="type"),
]
Sink = Callable[[Any], None]

_adapter: TypeAdapter[Any] = TypeAdapter(Event)


def _utf8(value: Any) -> Any:
    """Strings made valid UTF-8: a file name's undecodable bytes become \\xNN escapes."""
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {k: _utf8(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utf8(v) for v in value]
    return value


def to_json(event: _Event) -> str:
    """One event as one line of JSON (no newline)."""
    try:
        return event.model_dump_json()
    except PydanticSerializationError:  # a message quoting a file name that is not UTF-8
        return json.dumps(_utf8(event.model_dump(mode="json")), separators=(",", ":"))


def from_json(line: str) -> Any:
    """Parse a line written by `to_json` back into its event class."""
    return _adapter.validate_json(line)


class FrameProgress:
    """Progress of a stage counted in frames, sent to `sink` at most every `every_s`
    seconds (a forced one always goes): a fast loop cannot flood the front end."""

    def __init__(self, sink: Sink, stage: str, total: int | None, every_s: float = 0.25) -> None:
        self.sink, self.stage, self.total, self.every_s = sink, stage, total, every_s
        self._last = 0.0

    def __call__(
        self, done: int, counts: dict[str, float] | None = None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.sink(
                Progress(
                    stage=self.stage,
                    done=done,
                    total=self.total,
                    unit="frames",
                    counts=counts or {},
                )
            )


def null_sink(_event: Any) -> None:
    """A sink for callers that do not care."""


class CancelToken:
    """Set from any thread; long operations check it between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
