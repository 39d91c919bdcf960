"""Following a detached job from a screen: find it, replay its events, tail it.

A job (engine.jobs) runs in its own process and outlives the screen and the wizard,
so a screen only ever follows one: leaving it, or detaching, stops the follower and
never the job. The follower is a thread worker that reads the job's events file and
posts messages; the screen's handlers own the widgets. Each follower has a generation:
messages of an older one, still queued, are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import work
from textual.message import Message
from textual.worker import Worker, WorkerState

from engine.events import CancelToken
from engine.jobs import Job


@dataclass
class Attached(Message):
    """The follower found its job, or `job` is None: none of the screen's kind runs."""

    generation: int
    job: Job | None
    history: list[Any] = field(default_factory=list)  # from the screen's `_history_of`


@dataclass
class FollowEnded(Message):
    """The followed job ended (it was not the follower that was stopped)."""

    generation: int
    job: Job


@dataclass
class JobStarted(Message):
    """The screen's start worker started `job`: the screen follows it."""

    job: Job


@dataclass
class Stopped(Message):
    """The followed job answered the stop asked of it (`job` as it is now)."""

    job: Job


class FollowsJob:
    """Mixed into a Screen (`class TrainScreen(FollowsJob, Screen)`) that follows a job.

    It re-attaches to a running job of `job_kind` when the screen is shown, stops
    following when the screen goes, and keeps `job` and `following` up to date. It
    follows the job the screen's start worker posts (`JobStarted`), and `x`
    (`action_stop`) asks the followed job to stop, in a worker of group "stop".

    The screen provides:
    - `job_kind`: the kind of job it follows ("train", "compare");
    - `ws` (the Workspace), `starting` (a job is being started: do not look for one)
      and `_refresh_state()`, called after each change of `job` or `following`;
    - `_event_message(generation, event)`: the message that carries one of the job's
      engine events to the screen (run in the worker thread);
    - optionally `_history_of(job)` (worker thread: what to show before the events),
      `_attached(job, history)`, `_nothing_to_follow()` and `_job_ended(job)`;
    - optionally `_job_started(job)`, `_stop_asked()` and `_stop_answered(job)`: what
      the screen says when its job starts, when x asks it to stop, and when it answers.
    """

    job_kind: ClassVar[str]
    job: Job | None = None  # the job shown (followed, or last followed)
    following = False
    starting = False  # a job is being started: do not look for one
    stopping = False  # the followed job is asked to stop; its answer is not in yet
    _generation = 0  # the current follower's; bumped to drop an older one's messages
    _cancel: CancelToken | None = None  # stops the current follower

    def on_screen_resume(self) -> None:
        if not self.following and not self.starting:
            self._follow_job(None)

    def on_unmount(self) -> None:
        self._stop_following()  # never the job itself: it runs on without us

    def _follow_job(self, job: Job | None) -> None:
        """Follow `job`, or the running job of `job_kind` when None."""
        self._stop_following()
        self._generation += 1
        self._cancel = CancelToken()
        self._follow_worker(self._generation, job, self._cancel)

    def _stop_following(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self._cancel = None
        self.following = False

    @work(thread=True, group="follow")
    def _follow_worker(self, generation: int, job: Job | None, cancel: CancelToken) -> None:
        """Find (or take) the running job, replay its events, then tail it until it ends."""
        from engine import jobs

        if job is None:
            job = jobs.active_job(self.ws, kind=self.job_kind)
        if job is None:
            self.post_message(Attached(generation, None))
            return
        self.post_message(Attached(generation, job, self._history_of(job)))
        for event in jobs.follow(self.ws, job.id, cancel):
            self.post_message(self._event_message(generation, event))
        if not cancel.cancelled:
            self.post_message(FollowEnded(generation, jobs.get_job(self.ws, job.id)))

    def on_attached(self, message: Attached) -> None:
        if message.generation != self._generation:
            return
        if message.job is None:
            self._refresh_state()
            self._nothing_to_follow()
            return
        self.job = message.job
        self.following = True
        self._attached(message.job, message.history)
        self._refresh_state()

    def on_follow_ended(self, message: FollowEnded) -> None:
        if message.generation != self._generation:
            return
        self.job = message.job
        self.following = False
        self._cancel = None
        self._job_ended(message.job)
        self._refresh_state()

    def on_job_started(self, message: JobStarted) -> None:
        self.starting = False
        self.job = message.job
        self._job_started(message.job)
        self._follow_job(message.job)
        self._refresh_state()

    def action_stop(self) -> None:
        """Ask the followed job to stop (the job's own process saves what it must first)."""
        if self.job is None or not self.following or self.stopping:
            return
        self.stopping = True
        self._stop_asked()
        self._refresh_state()
        self._stop_worker(self.job.id)

    @work(thread=True, group="stop")
    def _stop_worker(self, job_id: str) -> None:
        from engine import jobs

        self.post_message(Stopped(jobs.stop_job(self.ws, job_id)))

    def on_stopped(self, message: Stopped) -> None:
        self.stopping = False
        self.job = message.job
        self._stop_answered(message.job)
        self._refresh_state()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app shows the error dialog for a failed worker; here the screen unblocks.
        # (Textual calls the screen's own handler too: handlers run for each class.)
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "stop":
            self.stopping = False
        elif event.worker.group == "follow":
            self.following = False
        else:
            return
        self._refresh_state()

    # ---- what the screen adds ---------------------------------------------------------------

    def _event_message(self, generation: int, event: Any) -> Message:
        raise NotImplementedError

    def _history_of(self, job: Job) -> list[Any]:
        return []

    def _attached(self, job: Job, history: list[Any]) -> None:
        pass

    def _nothing_to_follow(self) -> None:
        pass

    def _job_ended(self, job: Job) -> None:
        pass

    def _job_started(self, job: Job) -> None:
        pass

    def _stop_asked(self) -> None:
        pass

    def _stop_answered(self, job: Job) -> None:
        pass
