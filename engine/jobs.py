"""Detached jobs: training that outlives the terminal, the SSH session and the wizard.

A job is a folder, `jobs/<id>/`:

- `job.json`: what was asked (model, settings, the equivalent command line) and
  how it stands (pid, state, start and end times, exit code, reason). The job's
  own process owns it once started and rewrites it atomically.
- `events.jsonl`: the same events `--json` prints, one per line, appended as
  they happen; anyone can replay and follow it.
- `log`: the process's stderr (library warnings; a traceback if swapdeck has a bug).

Two processes run a job, each in its own session with no terminal, so a hangup
reaches neither: the trainer (`job.pid`) and a small supervisor, its parent,
that waits for it. SIGTERM (`stop_job`) makes the trainer save a checkpoint and
stop; SIGUSR1 (`save_now`) makes it save at the next step. A trainer killed
outright (SIGKILL, the out-of-memory killer, a crash in native code) runs no
code of its own, but its supervisor learns the signal and records it. A job
whose processes are both gone while its file still says running (a reboot, a
kill of both) is reported as failed too, never as running forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from engine.config import RunSettings
from engine.errors import (
    BadInputError,
    NotFoundError,
    SwapdeckError,
    WorkspaceError,
)
from engine.events import CancelToken, Failed, from_json, to_json
from engine.locks import lock_holder
from engine.model_index import step_of
from engine.workspace import DIR_MODE, Workspace, atomic_write_text, check_name, open_private

RUNNING_STATES = ("starting", "running")
# How long a spawned job may take to say it is running before start_train gives up waiting.
START_WAIT_S = 30.0


@dataclass
class Job:
    id: str
    kind: str
    model: str
    workspace: str
    command: list[str]
    spec: dict[str, Any]
    state: str = "starting"
    pid: int | None = None
    create_time: float | None = None
    # The supervisor waiting for `pid`, which records how the trainer ended.
    supervisor: int | None = None
    supervisor_create_time: float | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    exit_code: int | None = None
    reason: str = ""
    folder: Path = Path()

    @property
    def events_path(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def log_path(self) -> Path:
        return self.folder / "log"

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


def _job_file(folder: Path) -> Path:
    return folder / "job.json"


def _write(job: Job) -> None:
    data = job.to_dict()
    data.pop("folder")
    atomic_write_text(_job_file(job.folder), json.dumps(data, indent=1) + "\n")


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31


def _number(value: object) -> bool:
    return (_int(value) or isinstance(value, float)) and abs(value) < 1e12  # type: ignore[arg-type]


# job.json's fields by their annotation: a hand-edited or damaged file is refused on
# reading instead of failing later (a pid that is text, a start time that is infinite).
_FIELD_CHECKS: dict[str, Any] = {
    "str": lambda v: isinstance(v, str),
    "int | None": lambda v: v is None or _int(v),
    "float": _number,
    "float | None": lambda v: v is None or _number(v),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict[str, Any]": lambda v: isinstance(v, dict),
}


def _checked_fields(data: object, folder: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("id") != folder.name:  # a job is found, followed and stopped by its folder
        raise ValueError(f"its id is not {folder.name!r}")
    for spec in fields(Job):
        check = _FIELD_CHECKS.get(str(spec.type))
        if spec.name in data and check is not None and not check(data[spec.name]):
            raise ValueError(f"{spec.name} is {str(data[spec.name])[:40]!r}")
    return data


def _read(folder: Path) -> Job:
    try:
        data = json.loads(_job_file(folder).read_text(encoding="utf-8"))
        return Job(**_checked_fields(data, folder), folder=folder)
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        raise WorkspaceError(
            f"job {folder.name} has an unreadable job.json ({exc})",
            f"remove the folder {folder} if the job is not needed",
        ) from None


def _process_alive(pid: int | None, create_time: float | None) -> bool:
    """Is this process still there (not a recycled pid, not a zombie)?"""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        recycled = create_time is not None and abs(proc.create_time() - create_time) > 1
        return not recycled
    except psutil.Error:
        return False


def _alive(job: Job) -> bool:
    """Is the job's trainer process still there?"""
    return _process_alive(job.pid, job.create_time)


def _read_from(path: Path, offset: int) -> bytes:
    """What the file holds from `offset` on (nothing if it is not there yet)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def _last_step(job: Job) -> int | None:
    """The last step the job reported, to say how far a killed job got."""
    try:
        size = job.events_path.stat().st_size
    except OSError:
        return None
    step = None
    for line in _read_from(job.events_path, max(0, size - 65536)).splitlines():
        found = step_of(line) if b'"metrics"' in line else None
        step = step if found is None else found
    return step


def _settle(job: Job) -> Job:
    """A job that says running but whose processes are gone died without a word: say so."""
    if not job.running or _alive(job):
        return job
    if _process_alive(job.supervisor, job.supervisor_create_time):
        return job  # it is recording how the trainer ended, with the signal
    if job.pid is None and time.time() - job.started < START_WAIT_S:
        return job  # still starting up
    step = _last_step(job)
    where = f" after step {step}" if step is not None else ""
    job.state = "failed"
    job.ended = job.ended or time.time()
    job.reason = (
        f"its process ({job.pid}) ended without a word{where}: killed (SIGKILL, out of memory) "
        "or the machine restarted"
    )
    with contextlib.suppress(OSError, SwapdeckError):
        _write(job)
    return job


def list_jobs(workspace: Workspace) -> list[Job]:
    """Every job of the workspace, newest first; dead processes show as failed."""
    folder = workspace.jobs_dir
    if not folder.is_dir():
        return []
    jobs = []
    for sub in folder.iterdir():
        if _job_file(sub).is_file():
            with contextlib.suppress(WorkspaceError):
                jobs.append(_settle(_read(sub)))
    return sorted(jobs, key=lambda j: (j.started, j.id), reverse=True)


def get_job(workspace: Workspace, job_id: str) -> Job:
    """The job with this id (or the one job whose id starts with it)."""
    if job_id and "/" not in job_id and "\0" not in job_id and job_id not in (".", ".."):
        exact = workspace.jobs_dir / job_id
        if _job_file(exact).is_file():
            return _settle(_read(exact))
    matches = [j for j in list_jobs(workspace) if job_id and j.id.startswith(job_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BadInputError(f"job id {job_id!r} matches {len(matches)} jobs", "give more of the id")
    raise NotFoundError(
        f"no job {job_id!r} in workspace {workspace.root}", "see 'swapdeck jobs list'"
    )


def active_job(workspace: Workspace, model: str | None = None) -> Job | None:
    """The newest running training job (of `model`, when given), or None."""
    for job in list_jobs(workspace):
        if job.running and (model is None or job.model == model):
            return job
    return None


def _train_command(workspace: Workspace, model: str, requested: dict[str, Any], run: RunSettings):
    """The `swapdeck train` line that does the same, for people reading `jobs list`."""
    line = ["swapdeck", "train", "-w", str(workspace.root), "-m", model]
    for key, value in requested.items():
        if value is not None:
            line += [f"--{key.replace('_', '-')}", str(value)]
    defaults = RunSettings()
    for key, value in run.model_dump().items():
        if value != getattr(defaults, key):
            if isinstance(value, bool):
                line.append(f"--{key}" if value else f"--no-{key}")
            else:
                line += [f"--{key.replace('_', '-')}", str(value)]
    return line


def _new_id(workspace: Workspace, model: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    job_id, n = f"{model}-{stamp}", 1
    while (workspace.jobs_dir / job_id).exists():
        n += 1
        job_id = f"{model}-{stamp}-{n}"
    return job_id


def start_train(
    workspace: Workspace, model: str, requested: dict[str, Any], run: RunSettings
) -> Job:
    """Start training `model` as a detached job and return it once its process runs.

    The job survives this process's exit and the terminal's hangup. A model
    that already has a training process is refused.
    """
    check_name(model, "model name")
    workspace.ensure()
    holder = lock_holder(workspace, model)
    if holder is not None:
        running = active_job(workspace, model)
        which = f" as job {running.id}" if running else f" (pid {holder})"
        raise BadInputError(
            f"model {model} is already being trained{which}",
            "follow it with 'swapdeck jobs attach ID', or stop it with 'swapdeck jobs stop ID'",
        )
    job_id = _new_id(workspace, model)
    folder = workspace.jobs_dir / job_id
    try:
        folder.mkdir(mode=DIR_MODE)
        job = Job(
            id=job_id,
            kind="train",
            model=model,
            workspace=str(workspace.root),
            command=_train_command(workspace, model, requested, run),
            spec={"requested": requested, "run": run.model_dump(mode="json")},
            folder=folder,
        )
        _write(job)
        log = open_private(job.log_path, "ab")  # handed to the child, closed below
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create job folder {folder} ({exc.strerror})", "check the workspace"
        ) from None
    with log:
        proc = subprocess.Popen(  # the supervisor, which starts the trainer
            [sys.executable, "-m", "engine.cli", "jobs", "run-job", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # no terminal: a hangup or Ctrl-C here never reaches it
            close_fds=True,
            cwd=str(workspace.root),
        )
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        job = _read(folder)
        if job.state != "starting":
            return job
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    job = _read(folder)
    if job.state == "starting":
        job.pid = proc.pid
        _settle(job)
        job = _read(folder)
    return job


# ---- inside the job's own process ------------------------------------------------------


class _EventFile:
    """A sink appending each event as one JSON line, flushed so followers see it at once."""

    def __init__(self, path: Path) -> None:
        self._fh = open_private(path, "a", encoding="utf-8")  # lives as long as the job
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._fh.write(to_json(event) + "\n")
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def run_job(folder: Path) -> int:
    """Supervise the job described in `folder/job.json`; returns its exit code.

    Starts the trainer (`run_trainer`) as a child and waits for it. A trainer
    that ends without having said how (killed by a signal, or exited early)
    cannot write that down itself: this process does, with the signal's name.
    """
    folder = Path(folder).absolute()
    job = _read(folder)
    job.supervisor = os.getpid()
    job.supervisor_create_time = psutil.Process().create_time()
    _write(job)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    trainer = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "jobs", "run-job", "--trainer", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # stderr stays the job's log
        start_new_session=True,
    )
    # Whoever signals this process means the job: pass it on.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, lambda n, _frame: trainer.send_signal(n))
    code = trainer.wait()
    return _record_end(folder, trainer.pid, code)


def _record_end(folder: Path, pid: int, code: int) -> int:
    """Say how a trainer that left its job running ended; returns the job's exit code."""
    job = _read(folder)
    if not job.running:
        return int(job.exit_code or 0)  # it said so itself
    step = _last_step(job)
    where = f" after step {step}" if step is not None else ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        why = f"killed by signal {-code} ({name})"
        if -code == signal.SIGKILL:
            why += ": kill -9, 'jobs stop --force' or the out-of-memory killer"
        job.exit_code = 128 - code  # as a shell reports it
    else:
        why = f"exited with code {code} before it finished"
        job.exit_code = code or 1
    job.pid = job.pid or pid
    job.state, job.ended = "failed", time.time()
    job.reason = f"its process ({job.pid}) ended without a word{where}: {why}"
    hint = "start it again: training resumes from the last checkpoint"
    with contextlib.suppress(OSError):
        failed = Failed(stage=job.kind, message=job.reason, hint=hint, exit_code=job.exit_code)
        _append_event(job.events_path, failed)
    _write(job)
    return job.exit_code


def _append_event(path: Path, event: Any) -> None:
    """One event after the last one, on a line of its own even if a kill cut that one."""
    with open_private(path, "ab") as fh:
        cut = fh.tell() > 0 and _read_from(path, fh.tell() - 1) != b"\n"
        fh.write((b"\n" if cut else b"") + to_json(event).encode("utf-8") + b"\n")


def run_trainer(folder: Path) -> int:
    """Run the job described in `folder/job.json` in this process; returns its exit code.

    This is the trainer's whole life: mark it running, train with events going
    to events.jsonl, mark how it ended.
    """
    folder = Path(folder).absolute()
    job = _read(folder)
    cancel = CancelToken()
    save_request = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())
    signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, lambda *_: save_request.set())
    job.pid = os.getpid()
    job.create_time = psutil.Process().create_time()
    job.state = "running"
    _write(job)
    sink = _EventFile(job.events_path)
    try:
        from engine.train.loop import train

        run = RunSettings(**job.spec["run"])
        result = train(
            Workspace(job.workspace),
            job.model,
            job.spec["requested"],
            run,
            sink,
            cancel,
            save_request=save_request,
        )
        job.state = "stopped" if result.get("stopped") else "finished"
        job.reason = "stopped on request" if result.get("stopped") else ""
        job.exit_code = 0
    except SwapdeckError as exc:
        sink(Failed(stage=job.kind, message=exc.message, hint=exc.hint, exit_code=exc.exit_code))
        job.state, job.reason, job.exit_code = "failed", exc.one_line(), exc.exit_code
    except BaseException as exc:  # a bug: keep the traceback in the log, say so in one line
        traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        sink(Failed(stage=job.kind, message=message, hint=f"see {job.log_path}", exit_code=1))
        job.state, job.reason, job.exit_code = "failed", message, 1
    finally:
        sink.close()
        job.ended = time.time()
        _write(job)
    return int(job.exit_code or 0)


# ---- from outside: follow, stop, save ------------------------------------------------


def follow(
    workspace: Workspace,
    job_id: str,
    cancel: CancelToken | None = None,
    poll: float = 0.25,
) -> Iterator[Any]:
    """Replay the job's events from the start, then yield new ones as they come.

    Returns once the job has ended and every event is read, or when `cancel`
    is set (detaching: the job goes on).
    """
    job = get_job(workspace, job_id)
    cancel = cancel or CancelToken()
    pending, offset = b"", 0
    while not cancel.cancelled:
        chunk = _read_from(job.events_path, offset)
        ended = False
        if not chunk:
            ended = not get_job(workspace, job.id).running
            # Once it has ended, one more read takes what came between the two looks.
            chunk = _read_from(job.events_path, offset) if ended else b""
        offset += len(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        if ended:
            lines.append(pending)
        for line in lines:
            if line.strip():
                with contextlib.suppress(ValueError):
                    yield from_json(line)
        if ended:
            return
        if not chunk:
            time.sleep(poll)


def _signal(job: Job, signum: int) -> None:
    owner = job.folder.stat().st_uid
    if owner != os.getuid():
        raise BadInputError(
            f"job {job.id} belongs to another user (uid {owner})",
            "only its owner (or root) can control it",
        )
    if not job.running:
        raise BadInputError(
            f"job {job.id} is not running (it {job.state})", "see 'swapdeck jobs list'"
        )
    if not job.pid:  # never signal pid 0: that is this whole process group
        raise BadInputError(f"job {job.id} is still starting", "try again in a moment")
    try:
        os.kill(int(job.pid or 0), signum)
    except ProcessLookupError:
        _settle(job)
    except PermissionError:
        raise BadInputError(
            f"not allowed to signal job {job.id} (pid {job.pid})", "is it another user's?"
        ) from None


def stop_job(workspace: Workspace, job_id: str, timeout: float = 120.0, force: bool = False) -> Job:
    """Ask the job to save a checkpoint and stop, and wait until it has.

    `force` kills it at once instead (work since its last checkpoint is lost).
    """
    job = get_job(workspace, job_id)
    _signal(job, signal.SIGKILL if force else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(workspace, job.id)
        if not job.running:
            return job
        time.sleep(0.1)
    raise WorkspaceError(
        f"job {job.id} did not stop within {timeout:g} s",
        f"it may be saving a large checkpoint; try again, or 'swapdeck jobs stop {job.id} --force'",
    )


def save_now(workspace: Workspace, job_id: str) -> None:
    """Ask a running job to write its checkpoint at the next step (a Saved event follows)."""
    _signal(get_job(workspace, job_id), signal.SIGUSR1)


def read_log(workspace: Workspace, job_id: str) -> str:
    """The job's stderr log (library warnings; a traceback only if swapdeck has a bug)."""
    job = get_job(workspace, job_id)
    try:
        return job.log_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
