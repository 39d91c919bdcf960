"""Textual messages that carry engine work back to the widgets.

Workers run engine stages in threads and never touch a widget: they hand a
sink made by `poster` to the engine, and every event it emits arrives on the
screen as an `EngineEvent` message. A burst of progress or metrics collapses
to the latest one still queued, so a fast stage cannot flood the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

# Events whose newer copy makes an older, still-queued one pointless.
_REPLACEABLE = frozenset({"progress", "metrics"})


class EngineEvent(Message):
    """One engine event (engine.events), posted from a worker thread.

    `task` names the piece of work that emitted it, so one screen can run
    several stages (convert, then score) and tell their events apart.
    """

    def __init__(self, event: Any, task: str = "") -> None:
        super().__init__()
        self.event = event
        self.task = task

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, EngineEvent) or message.task != self.task:
            return False
        mine, theirs = self.event, message.event
        return (
            mine.type == theirs.type
            and mine.type in _REPLACEABLE
            and getattr(mine, "stage", None) == getattr(theirs, "stage", None)
        )


class TaskDone(Message):
    """A worker's task finished; `result` is what the engine returned."""

    def __init__(self, task: str, result: Any) -> None:
        super().__init__()
        self.task = task
        self.result = result


def poster(target: MessagePump, task: str = "") -> Callable[[Any], None]:
    """A thread-safe engine sink that posts each event to `target` as an EngineEvent."""

    def sink(event: Any) -> None:
        target.post_message(EngineEvent(event, task))

    return sink


def worker_ended(event: Worker.StateChanged, group: str) -> bool:
    """Did a worker of `group` just end (done, failed or cancelled)?"""
    return event.worker.group == group and event.state in (
        WorkerState.SUCCESS,
        WorkerState.ERROR,
        WorkerState.CANCELLED,
    )
