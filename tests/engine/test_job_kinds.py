"""Any registered kind of job runs detached and is followed; an unknown kind fails in one line.

The kind below is registered when this module is imported, here and in the job's
own processes: `start_job` names this module to them (SWAPDECK_JOB_KINDS), and
the `on_path` fixture puts it on their import path. job.json itself names only
the kind, so a workspace cannot make `jobs run-job` import anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config import RunSettings
from engine.errors import UnavailableError
from engine.events import CancelToken, Finished, Progress, Saved, Started
from engine.jobs import (
    KINDS_ENV,
    Job,
    JobKind,
    _write,
    active_job,
    follow,
    get_job,
    job_kind,
    list_jobs,
    register_kind,
    start_job,
    stop_job,
)
from engine.workspace import Workspace

KIND = "test-count"


def _count(workspace, target, spec, sink, cancel, save_request) -> dict[str, Any]:
    """Count to spec["n"], one Progress a tick; a save request is answered with a Saved."""
    sink(Started(stage=KIND, detail={"target": target}))
    done = 0
    while done < spec["n"] and not cancel.cancelled:
        done += 1
        sink(Progress(stage=KIND, done=done, total=spec["n"], unit="ticks"))
        if save_request.is_set():
            save_request.clear()
            sink(Saved(path=str(workspace.root), what=f"tick {done} (requested)"))
        time.sleep(spec["pause"])
    result = {"done": done, "stopped": cancel.cancelled}
    sink(Finished(stage=KIND, result=result))
    return result


register_kind(
    JobKind(
        name=KIND,
        run=_count,
        command=lambda _ws, target, spec: ["count", target, str(spec["n"])],
        target="counter",
    )
)

# The folder this module is imported from, whatever pytest's import mode named it.
HERE = Path(__file__).resolve().parents[__name__.count(".")]
SWAPDECK = [sys.executable, "-m", "engine.cli"]


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's processes can import this module (only the caller's environment says so)."""
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.delenv(KINDS_ENV, raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def _follow(ws: Workspace, job_id: str, within: float = 60) -> list[Any]:
    cancel = CancelToken()
    timer = threading.Timer(within, cancel.cancel)
    timer.start()
    try:
        seen = list(follow(ws, job_id, cancel, poll=0.05))
    finally:
        timer.cancel()
    assert not cancel.cancelled, f"job {job_id} did not end within {within} s"
    return seen


def _events(job: Job) -> list[dict[str, Any]]:
    lines = job.events_path.read_text().splitlines() if job.events_path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _wait_for(predicate, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_registered_kind_runs_detached_and_is_followed(ws: Workspace, on_path: None) -> None:
    job = start_job(ws, KIND, "c1", {"n": 3, "pause": 0.0})
    assert job.kind == KIND and job.model == job.target == "c1" and job.pid
    assert job.state in ("running", "finished")
    assert os.getsid(job.pid) == job.pid != os.getsid(0)  # detached: a session of its own

    seen = _follow(ws, job.id)
    assert [e.type for e in seen] == ["started", "progress", "progress", "progress", "finished"]
    assert seen[0].detail == {"target": "c1"}
    assert [e.done for e in seen if e.type == "progress"] == [1, 2, 3]
    assert seen[-1].result == {"done": 3, "stopped": False}

    final = get_job(ws, job.id)
    assert (final.state, final.exit_code, final.reason) == ("finished", 0, "")
    assert final.command == ["count", "c1", "3"]
    record = json.loads((final.folder / "job.json").read_text())
    assert record["kind"] == KIND and record["model"] == "c1"
    assert record["spec"] == {"n": 3, "pause": 0.0}
    assert [j.id for j in list_jobs(ws)] == [job.id]


def test_a_job_of_any_kind_saves_and_stops_on_request(ws: Workspace, on_path: None) -> None:
    from engine.jobs import save_now

    job = start_job(ws, KIND, "c2", {"n": 100000, "pause": 0.02})
    _wait_for(lambda: sum(e["type"] == "progress" for e in _events(job)) >= 2)
    assert active_job(ws, kind=KIND).id == job.id  # type: ignore[union-attr]
    assert active_job(ws) is None  # the training screen's question: no training runs

    save_now(ws, job.id)
    _wait_for(lambda: any(e["type"] == "saved" for e in _events(job)))
    stopped = stop_job(ws, job.id, timeout=30)
    assert (stopped.state, stopped.exit_code) == ("stopped", 0)
    assert stopped.reason == "stopped on request"
    seen = _follow(ws, job.id)
    assert seen[-1].type == "finished" and seen[-1].result["stopped"] is True


def test_the_train_kind_describes_its_command_line(ws: Workspace) -> None:
    run = RunSettings(steps=20, save_every=10, compile=True)
    spec = {"requested": {"preset": "tiny", "faceset_a": "a", "faceset_b": None},
            "run": run.model_dump(mode="json")}  # fmt: skip
    assert job_kind("train").command(ws, "m", spec) == [
        "swapdeck", "train", "-w", str(ws.root), "-m", "m", "--preset", "tiny",
        "--faceset-a", "a", "--steps", "20", "--save-every", "10", "--compile",
    ]  # fmt: skip


def _hand_written(ws: Workspace, job_id: str, kind: str) -> Job:
    """A job.json this swapdeck did not write (a newer version's, or a hostile workspace's)."""
    folder = ws.jobs_dir / job_id
    folder.mkdir(parents=True)
    job = Job(id=job_id, kind=kind, model="x", workspace=str(ws.root), command=[], spec={},
              folder=folder)  # fmt: skip
    _write(job)
    return job


def test_an_unknown_kind_fails_in_one_line(ws: Workspace, on_path: None) -> None:
    with pytest.raises(UnavailableError, match="unknown job kind 'no-such-kind'"):
        start_job(ws, "no-such-kind", "x", {})
    assert not ws.jobs_dir.exists() or not any(ws.jobs_dir.iterdir())

    # job.json names kinds, never modules: only what the caller's environment loads
    # is known, so neither a newer version's kind nor a module path runs here, and
    # this module's kind is unknown to a `jobs run-job` not told to load it.
    for n, kind in enumerate(["from-a-newer-swapdeck", "os:system", __name__, KIND]):
        for worker in ([], ["--worker"]):
            job = _hand_written(ws, f"x-{n}{len(worker)}", kind)
            done = subprocess.run(
                [*SWAPDECK, "jobs", "run-job", *worker, str(job.folder)],
                capture_output=True, text=True, timeout=120, cwd=ws.root,
            )  # fmt: skip
            if not worker:  # the supervisor says it on stderr (the job's log)
                assert done.returncode == 7, done.stderr
                assert "unknown job kind" in done.stderr and "Traceback" not in done.stderr
            failed = get_job(ws, job.id)
            assert (failed.state, failed.exit_code) == ("failed", 7)
            assert failed.reason.startswith(f"unknown job kind {kind[:40]!r}")
            last = _follow(ws, job.id)[-1]
            assert last.type == "failed" and "unknown job kind" in last.message


def test_files_in_the_workspace_are_never_imported(
    ws: Workspace, on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's processes run in the workspace, but it is not on their import path, not
    even through an empty PYTHONPATH entry (which means the working directory)."""
    monkeypatch.setenv("PYTHONPATH", os.environ["PYTHONPATH"] + os.pathsep)
    ws.ensure()
    marker = ws.root / "imported"
    evil = f"open({str(marker)!r}, 'w').close()\nraise SystemExit(9)\n"
    (ws.root / "engine").mkdir()
    (ws.root / "engine" / "__init__.py").write_text(evil)
    (ws.root / f"{__name__.rpartition('.')[2]}.py").write_text(evil)
    job = start_job(ws, KIND, "c3", {"n": 1, "pause": 0.0})
    _follow(ws, job.id)
    final = get_job(ws, job.id)
    assert final.state == "finished", final.reason
    assert not marker.exists()
