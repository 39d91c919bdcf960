"""What every command shares: option aliases, event rendering, the error boundary."""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from engine.errors import ExitCode, SwapdeckError

if TYPE_CHECKING:  # engine.events pulls in pydantic: imported on use, so --help and the
    from engine.events import CancelToken  # wizard start sooner

F = TypeVar("F", bound=Callable[..., Any])

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace folder (created if missing).")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON event per line on stdout instead.")
]

err_console = Console(stderr=True)
out_console = Console()


class EngineEtaColumn(TimeRemainingColumn):
    """The engine's own ETA where its events give one (training: whichever of the step
    cap and the time limit ends the run first); Rich's estimate from the bar otherwise."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta_s")
        if eta is None or task.finished:
            return super().render(task)
        minutes, seconds = divmod(int(eta), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class Reporter:
    """A sink: JSON lines on stdout, or Rich progress and messages on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: Any) -> None:
        if self.as_json:
            from engine.events import to_json

            sys.stdout.write(to_json(event) + "\n")
            sys.stdout.flush()
            return
        kind = event.type
        if kind == "progress":
            self._show_progress(event)
        elif kind == "metrics":
            losses = "  ".join(f"loss {k.upper()} {v:.4f}" for k, v in event.losses.items())
            total = int(event.extra.get("total_steps", 0)) or None
            self._bar(
                "train",
                event.step,
                total,
                "steps",
                f"{losses}  {event.examples_per_s:.1f} ex/s",
                event.extra.get("eta_s"),
            )
        elif kind == "started":
            detail = event.detail
            if event.stage == "train":
                err_console.print(
                    f"[bold]train[/]: {detail['preset']} model {detail['model']} "
                    f"({detail['parameters'] / 1e6:.1f} M parameters) on {detail['device']}, "
                    f"{detail['precision']}, from step {detail['start_step']}"
                )
            elif "backend" in detail:
                err_console.print(
                    f"[bold]{event.stage}[/]: {detail.get('backend_detail', detail['backend'])} "
                    f"({detail.get('backend_reason', '')})"
                )
        elif kind in ("info", "warning"):
            style = "yellow" if kind == "warning" else "cyan"
            hint = f" ({event.hint})" if getattr(event, "hint", "") else ""
            self._print(f"[{style}]{kind}:[/] {escape(event.message + hint)}")
        elif kind == "finished":
            self.close()

    def _print(self, text: str) -> None:
        (self._progress.console if self._progress else err_console).print(text)

    def _show_progress(self, event: Any) -> None:
        counts = "  ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in event.counts.items())
        self._bar(event.stage, event.done, event.total, event.unit, counts)

    def _bar(
        self,
        stage: str,
        done: int,
        total: int | None,
        unit: str,
        counts: str,
        eta_s: float | None = None,
    ) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TextColumn("{task.fields[counts]}"),
                EngineEtaColumn(),
                console=err_console,
                transient=False,
            )
            self._progress.start()
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(
                stage, total=total, unit=unit, counts=counts, eta_s=eta_s
            )
        self._progress.update(
            self._tasks[stage], completed=done, total=total, counts=counts, eta_s=eta_s
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()


def fail(exc: SwapdeckError, as_json: bool) -> typer.Exit:
    """Report a user mistake as one line (or one JSON event) and give its exit code."""
    if as_json:
        from engine.events import Failed, to_json

        sys.stdout.write(
            to_json(
                Failed(stage="cli", message=exc.message, hint=exc.hint, exit_code=exc.exit_code)
            )
            + "\n"
        )
    # Escaped: messages quote user paths, and Rich would read "[...]" in them as markup.
    err_console.print(
        f"[bold red]error:[/] {escape(exc.one_line())}", highlight=False, soft_wrap=True
    )
    return typer.Exit(exc.exit_code)


def guarded(func: F) -> F:
    """The single boundary where engine errors become a line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except SwapdeckError as exc:
            raise fail(exc, as_json) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(ExitCode.CANCELLED) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def cancel_on_interrupt() -> Iterator[CancelToken]:
    """First Ctrl-C (or SIGTERM) asks the engine to stop cleanly; a second one aborts."""
    from engine.events import CancelToken

    token = CancelToken()

    def handler(signum: int, _frame: object) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        err_console.print("stopping after the current frame (Ctrl-C again to abort)")

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. under some test runners)
        previous = {}
    try:
        yield token
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def report_started_job(job: Any, doing: str, workspace: Path, as_json: bool) -> None:
    """Say a detached job's id (stdout) and how to follow it; a job that failed to start
    exits with its code."""
    if as_json:
        print_json(job.to_dict())
    else:
        out_console.print(job.id, highlight=False)
        err_console.print(
            f"{doing} in the background as job {job.id} ({job.state}); "
            f"follow it with 'swapdeck jobs attach {job.id} -w {workspace}'",
            highlight=False,
        )
    if job.state == "failed":
        if not as_json:
            err_console.print(f"[bold red]error:[/] {escape(job.reason)}", highlight=False)
        raise typer.Exit(job.exit_code or 1)
