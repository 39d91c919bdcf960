"""Detached jobs: long engine tasks that outlive the terminal, the SSH session and the wizard.

A job has a kind (`train` today; reenact or compare later), declared once in a
registry: how to write its command line, what runs in the job's own process,
what its target names. A job is a folder, `jobs/<id>/`:

- `job.json`: what was asked (kind, target model, settings, the equivalent
  command line) and how it stands (pid, state, start and end times, exit code,
  reason). The job's own process owns it once started and rewrites it atomically.
- `events.jsonl`: the same events `--json` prints, one per line, appended as
  they happen; anyone can replay and follow it.
- `log`: the process's stderr (library warnings; a traceback if swapdeck has a bug).

Two processes run a job, each in its own session with no terminal, so a hangup
reaches neither: the worker (`job.pid`; the trainer, for training) and a small
supervisor, its parent, that waits for it. SIGTERM (`stop_job`) cancels the
worker (a trainer saves a checkpoint and stops); SIGUSR1 (`save_now`) sets its
save request (a trainer saves at the next step). A worker killed
outright (SIGKILL, the out-of-memory killer, a crash in native code) runs no
code of its own, but its supervisor learns the signal and records it. A job
whose processes are both gone while its file still says running (a reboot, a
kill of both) is reported as failed too, never as running forever.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from engine.config import RunSettings
from engine.errors import (
    BadInputError,
    NotFoundError,
    SwapdeckError,
    UnavailableError,
    WorkspaceError,
)
from engine.events import CancelToken, Failed, Sink, from_json, to_json
from engine.locks import lock_holder
from engine.model_index import step_of
from engine.workspace import DIR_MODE, Workspace, atomic_write_text, check_name, open_private

RUNNING_STATES = ("starting", "running")
# How long a spawned job may take to say it is running before start_job gives up waiting.
START_WAIT_S = 30.0
# Modules (comma-separated) whose import registers more job kinds. Only the caller's
# environment names them, never job.json: a workspace can pick among registered kinds,
# not make `jobs run-job` import code of its choosing.
KINDS_ENV = "SWAPDECK_JOB_KINDS"
# -P: the working directory (the user's workspace) is not put on the import path of
# the job's processes, so files there cannot stand in for swapdeck's modules or a kind's.
_PYTHON = [sys.executable, "-P"]


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
    def target(self) -> str:
        """What the job works on, whatever its kind (kept in job.json as `model`)."""
        return self.model

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


def _lost(job: Job) -> bool:
    """Does the job say it runs while its processes are gone?"""
    if not job.running or _alive(job):
        return False
    if _process_alive(job.supervisor, job.supervisor_create_time):
        return False  # it is recording how the worker ended, with the signal
    # A job not yet running (no pid) may still be starting up.
    return job.pid is not None or time.time() - job.started >= START_WAIT_S


def _settle(job: Job) -> Job:
    """A job that says running but whose processes are gone died without a word: say so."""
    if not _lost(job):
        return job
    # Its processes are gone, so nothing writes job.json any more; but it may have
    # said how it ended after `job` was read (a short job does, at once).
    with contextlib.suppress(WorkspaceError):
        job = _read(job.folder)
    if not _lost(job):
        return job
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


def active_job(
    workspace: Workspace, model: str | None = None, kind: str | None = "train"
) -> Job | None:
    """The newest running job of `kind` (training unless told; None: any kind), of
    `model` when given, or None."""
    for job in list_jobs(workspace):
        mine = (model is None or job.model == model) and (kind is None or job.kind == kind)
        if job.running and mine:
            return job
    return None


# ---- kinds of job ------------------------------------------------------------------

# What runs in the job's own process: (workspace, target, spec, sink, cancel,
# save_request) -> result. It reports through the sink (Started ... Finished, as
# the stage does in the foreground), stops soon after `cancel` is set and then
# returns a result with "stopped": True; `save_request` is set by `save_now`.
JobRun = Callable[
    [Workspace, str, dict[str, Any], Sink, CancelToken, threading.Event], dict[str, Any]
]


@dataclass(frozen=True)
class JobKind:
    """One kind of long engine task that can run as a detached job."""

    name: str
    run: JobRun
    # The equivalent command line, for people reading `jobs list`: (workspace, target, spec).
    command: Callable[[Workspace, str, dict[str, Any]], list[str]]
    # What the target names (job.json keeps it as `model`, whatever it names).
    target: str = "model"
    # Refuses to start (raises a SwapdeckError) while the target is busy, say.
    check: Callable[[Workspace, str], None] | None = None
    # Said when the job's process was killed outright.
    restart_hint: str = "start it again"


_KINDS: dict[str, JobKind] = {}
_loaded_modules: set[str] = set()


def register_kind(kind: JobKind) -> JobKind:
    """Make `kind` startable with `start_job`; returns it.

    A kind outside engine.jobs is registered by importing the module that
    defines its `run` (`start_job` has its child import that module too), so
    register it at that module's top level.
    """
    known = _KINDS.get(kind.name)
    if known is not None and _origin(known) != _origin(kind):
        raise ValueError(f"job kind {kind.name!r} is already {_origin(known)}")
    _KINDS[kind.name] = kind
    return kind


def _origin(kind: JobKind) -> str:
    return f"{kind.run.__module__}:{kind.run.__qualname__}"


# Kinds swapdeck ships outside this module, each registered when its module is imported.
BUILTIN_KIND_MODULES = ("engine.compare.job", "engine.reenact.job")


def _env_modules() -> list[str]:
    return [m.strip() for m in os.environ.get(KINDS_ENV, "").split(",") if m.strip()]


def job_kind(name: str) -> JobKind:
    """The registered kind called `name`, loading the modules `SWAPDECK_JOB_KINDS` names
    if it is not known yet."""
    if name not in _KINDS:
        for module in (*BUILTIN_KIND_MODULES, *_env_modules()):
            if module in _loaded_modules:
                continue
            _loaded_modules.add(module)
            try:
                importlib.import_module(module)
            except Exception as exc:  # their bug or a wrong name: one line, the job fails
                if not isinstance(exc, ImportError):
                    traceback.print_exc()
                raise UnavailableError(
                    f"cannot load job kinds from module {module!r} ({type(exc).__name__}: {exc})",
                    f"check {KINDS_ENV}",
                ) from None
    if name not in _KINDS:
        raise UnavailableError(
            f"unknown job kind {name[:40]!r} (this swapdeck knows {', '.join(sorted(_KINDS))})",
            "a job made by a newer swapdeck needs that version to run it",
        )
    return _KINDS[name]


def _child_env(kind: JobKind) -> dict[str, str]:
    """The job's environment: ours, naming the module that registers `kind` if it is a plug-in."""
    env = dict(os.environ)
    # The job runs in the workspace: a relative PYTHONPATH entry (an empty one means
    # "here") would import from there. Make each mean what it means to us.
    if env.get("PYTHONPATH"):
        entries = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(entry) for entry in entries)
    module = kind.run.__module__
    if module == "__main__":
        raise ValueError(f"job kind {kind.name!r} must be defined in an importable module")
    if module != __name__ and module not in BUILTIN_KIND_MODULES:
        env[KINDS_ENV] = ",".join(dict.fromkeys([*_env_modules(), module]))
    return env


# Options `swapdeck train` has flags for; the others are given as --set KEY=VALUE.
_TRAIN_FLAGS = frozenset(
    {"faceset_a", "faceset_b", "preset", "size", "layout", "batch_size", "lr", "loss", "seed"}
    | {"videos", "vgg_weights"}  # fomm's (fast-swap's too)
    | {"inputs"}  # fast-swap's, a list: the flag once per name
)


def train_command(workspace: Workspace, model: str, requested: dict[str, Any], run: RunSettings):
    """The `swapdeck train` line that does the same, for people reading `jobs list`."""
    line = ["swapdeck", "train", "-w", str(workspace.root), "-m", model]
    for key, value in requested.items():
        if value is None:
            continue
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, list | tuple):  # a list (in job.json a tuple is a list)
            if key in _TRAIN_FLAGS and value:
                line += [part for item in value for part in (flag, str(item))]
            else:  # no flag, or empty (which --set says and a repeated flag cannot)
                line += ["--set", f"{key}={','.join(map(str, value))}"]
        elif key in _TRAIN_FLAGS:
            line += [flag, str(value)]
        else:  # a family option without a flag of its own
            line += ["--set", f"{key}={value}"]
    defaults = RunSettings()
    for key, value in run.model_dump().items():
        if value != getattr(defaults, key):
            if isinstance(value, bool):
                line.append(f"--{key}" if value else f"--no-{key}")
            else:
                line += [f"--{key.replace('_', '-')}", str(value)]
    return line


def _describe_train(workspace: Workspace, model: str, spec: dict[str, Any]) -> list[str]:
    return train_command(workspace, model, spec["requested"], RunSettings(**spec["run"]))


def _check_train(workspace: Workspace, model: str) -> None:
    """One training process per model, detached or not: its lock says if one runs."""
    holder = lock_holder(workspace, model)
    if holder is not None:
        running = active_job(workspace, model)
        which = f" as job {running.id}" if running else f" (pid {holder})"
        raise BadInputError(
            f"model {model} is already being trained{which}",
            "follow it with 'swapdeck jobs attach ID', or stop it with 'swapdeck jobs stop ID'",
        )


def _run_train(
    workspace: Workspace,
    model: str,
    spec: dict[str, Any],
    sink: Sink,
    cancel: CancelToken,
    save_request: threading.Event,
) -> dict[str, Any]:
    from engine.train.loop import train

    run = RunSettings(**spec["run"])
    result = train(
        workspace, model, spec["requested"], run, sink, cancel, save_request=save_request
    )
    return result.model_dump(mode="json", exclude_unset=True)


register_kind(
    JobKind(
        name="train",
        run=_run_train,
        command=_describe_train,
        check=_check_train,
        restart_hint="start it again: training resumes from the last checkpoint",
    )
)


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
    spec = {"requested": requested, "run": run.model_dump(mode="json")}
    return start_job(workspace, "train", model, spec)


def start_job(workspace: Workspace, kind: str, target: str, spec: dict[str, Any]) -> Job:
    """Start a job of a registered `kind` on `target` (a model's name, for training),
    detached, and return it once its process runs (or has failed to).

    `spec` (plain JSON) is all the job's process gets besides the target; it is
    kept in job.json. The job survives this process's exit and the terminal's hangup.
    """
    declared = job_kind(kind)
    check_name(target, f"{declared.target} name")
    command = declared.command(workspace, target, spec)
    json.dumps(spec)  # refused here (TypeError), not half-written in job.json
    env = _child_env(declared)
    workspace.ensure()
    if declared.check is not None:
        declared.check(workspace, target)
    job_id = _new_id(workspace, target)
    folder = workspace.jobs_dir / job_id
    try:
        folder.mkdir(mode=DIR_MODE)
        job = Job(
            id=job_id,
            kind=kind,
            model=target,
            workspace=str(workspace.root),
            command=command,
            spec=spec,
            folder=folder,
        )
        _write(job)
        log = open_private(job.log_path, "ab")  # handed to the child, closed below
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create job folder {folder} ({exc.strerror})", "check the workspace"
        ) from None
    with log:
        proc = subprocess.Popen(  # the supervisor, which starts the worker
            [*_PYTHON, "-m", "engine.cli", "jobs", "run-job", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # no terminal: a hangup or Ctrl-C here never reaches it
            close_fds=True,
            cwd=str(workspace.root),
            env=env,
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

    Starts the worker (`run_worker`) as a child and waits for it. A worker
    that ends without having said how (killed by a signal, or exited early)
    cannot write that down itself: this process does, with the signal's name.
    A job of a kind this swapdeck does not know is marked failed, and the error raised.
    """
    folder = Path(folder).absolute()
    job = _read(folder)
    try:
        job_kind(job.kind)
    except SwapdeckError as exc:
        _mark_failed(job, exc.one_line(), exc.hint, exc.exit_code, exc.message)
        raise
    job.supervisor = os.getpid()
    job.supervisor_create_time = psutil.Process().create_time()
    _write(job)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    worker = subprocess.Popen(
        [*_PYTHON, "-m", "engine.cli", "jobs", "run-job", "--worker", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # stderr stays the job's log
        start_new_session=True,
    )
    # Whoever signals this process means the job: pass it on.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, lambda n, _frame: worker.send_signal(n))
    code = worker.wait()
    return _record_end(folder, worker.pid, code)


def _record_end(folder: Path, pid: int, code: int) -> int:
    """Say how a worker that left its job running ended; returns the job's exit code."""
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
        exit_code = 128 - code  # as a shell reports it
    else:
        why = f"exited with code {code} before it finished"
        exit_code = code or 1
    job.pid = job.pid or pid
    reason = f"its process ({job.pid}) ended without a word{where}: {why}"
    known = _KINDS.get(job.kind)
    return _mark_failed(job, reason, known.restart_hint if known else "", exit_code)


def _mark_failed(job: Job, reason: str, hint: str, exit_code: int, message: str = "") -> int:
    """Write down that the job failed, in job.json and as its last event; returns exit_code."""
    job.state, job.ended = "failed", time.time()
    job.reason, job.exit_code = reason, exit_code
    with contextlib.suppress(OSError):
        failed = Failed(stage=job.kind, message=message or reason, hint=hint, exit_code=exit_code)
        _append_event(job.events_path, failed)
    _write(job)
    return exit_code


def _append_event(path: Path, event: Any) -> None:
    """One event after the last one, on a line of its own even if a kill cut that one."""
    with open_private(path, "ab") as fh:
        cut = fh.tell() > 0 and _read_from(path, fh.tell() - 1) != b"\n"
        fh.write((b"\n" if cut else b"") + to_json(event).encode("utf-8") + b"\n")


def run_worker(folder: Path) -> int:
    """Run the job described in `folder/job.json` in this process; returns its exit code.

    This is the worker's whole life: mark it running, run its kind with events
    going to events.jsonl, mark how it ended.
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
        kind = job_kind(job.kind)
        result = kind.run(Workspace(job.workspace), job.model, job.spec, sink, cancel, save_request)
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
