"""`swapdeck jobs`: list, attach to, stop and read detached jobs (training, for now)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.common import (
    JsonOpt,
    Reporter,
    WorkspaceOpt,
    err_console,
    guarded,
    out_console,
    print_json,
)

app = typer.Typer(help="Detached jobs: list, attach, stop, logs.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="Job id (or its unique beginning); see 'jobs list'.")]


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


@app.command("list")
@guarded
def list_command(workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """Every job of the workspace, newest first (a job whose process died shows as failed)."""
    from engine.jobs import list_jobs
    from engine.workspace import Workspace

    jobs = list_jobs(Workspace(workspace))
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        err_console.print("no jobs yet: start one with 'swapdeck train ... --detach'")
        return
    table = Table("id", "kind", "model", "state", "pid", "started", "ended", "exit", "reason")
    for job in jobs:
        table.add_row(
            job.id,
            escape(job.kind),
            escape(job.model),
            job.state,
            str(job.pid or "-"),
            _when(job.started),
            _when(job.ended),
            "-" if job.exit_code is None else str(job.exit_code),
            escape(job.reason),
        )
    out_console.print(table)


@app.command("attach")
@guarded
def attach_command(job_id: JobId, workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """Replay a job's events so far, then follow it live. Ctrl-C detaches; the job goes on."""
    from engine.jobs import follow, get_job
    from engine.workspace import Workspace

    ws = Workspace(workspace)
    job = get_job(ws, job_id)
    reporter = Reporter(as_json)
    try:
        for event in follow(ws, job.id):
            reporter(event)
    except KeyboardInterrupt:
        reporter.close()
        err_console.print(f"detached from {job.id}; it goes on ('swapdeck jobs list')")
        return
    finally:
        reporter.close()
    job = get_job(ws, job.id)
    if not as_json:
        reason = f": {escape(job.reason)}" if job.reason else ""
        out_console.print(f"job {job.id} {job.state}{reason}")
    if job.state == "failed":
        raise typer.Exit(job.exit_code or 1)


@app.command("stop")
@guarded
def stop_command(
    job_id: JobId,
    workspace: WorkspaceOpt,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the checkpoint.")] = 120.0,
    force: Annotated[
        bool, typer.Option("--force", help="Kill at once (loses work since the last save).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop a job gracefully: it saves its checkpoint first, then ends."""
    from engine.jobs import stop_job
    from engine.workspace import Workspace

    job = stop_job(Workspace(workspace), job_id, timeout=timeout, force=force)
    if as_json:
        print_json(job.to_dict())
    else:
        out_console.print(f"job {job.id} {job.state}")


@app.command("logs")
@guarded
def logs_command(job_id: JobId, workspace: WorkspaceOpt) -> None:
    """Print a job's stderr log."""
    from engine.jobs import read_log
    from engine.workspace import Workspace

    typer.echo(read_log(Workspace(workspace), job_id), nl=False)


@app.command("run-job", hidden=True)
@guarded
def run_job_command(
    folder: Annotated[Path, typer.Argument()],
    worker: Annotated[
        bool, typer.Option("--worker", "--trainer", help="Be the job's worker itself.")
    ] = False,
) -> None:
    """The detached processes (started by 'train --detach'): the supervisor, or with
    --worker the worker it starts (--trainer: the same, as older supervisors say);
    not for people."""
    from engine.jobs import run_job, run_worker

    raise typer.Exit(run_worker(folder) if worker else run_job(folder))
