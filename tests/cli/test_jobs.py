"""Detached training jobs through the CLI: start, list, attach, save, stop, stale pids, locks.

Real processes all the way: `swapdeck train --detach` spawns a real trainer in
its own session, and the tests signal and kill it as a user or the OS would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.workspace import Workspace

SWAPDECK = [sys.executable, "-m", "engine.cli"]


def swapdeck(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWAPDECK, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def jobs_json(ws: Path) -> list[dict]:
    result = swapdeck("jobs", "list", "-w", ws, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def events(ws: Path, job_id: str) -> list[dict]:
    path = ws / "jobs" / job_id / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_step(ws: Path, job_id: str) -> int:
    steps = [e["step"] for e in events(ws, job_id) if e["type"] == "metrics"]
    return steps[-1] if steps else 0


def start(ws: Path, model: str, *extra: object) -> dict:
    result = swapdeck(
        "train", "-w", ws, "-m", model, "-a", "a", "-b", "b", "--preset", "tiny",
        "--log-every", "2", "--preview-every", "1000", "--snapshot-every", "0",
        *extra, "--detach", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "running" and job["pid"]
    return job


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    return facesets_ws


@pytest.mark.slow
def test_job_runs_detached_and_attach_replays_then_follows(ws: Path) -> None:
    job = start(ws, "m", "--steps", "20", "--save-every", "10")
    # The job has its own session: no terminal of ours can hang it up.
    assert os.getsid(job["pid"]) == job["pid"] != os.getsid(0)
    wait_for(lambda: last_step(ws, job["id"]) >= 4, what="a few steps")

    # Attach after some steps: the history first (started, metrics from step 2), then live.
    attach = swapdeck("jobs", "attach", job["id"][:8], "-w", ws, "--json", timeout=300)
    assert attach.returncode == 0, attach.stderr
    seen = [json.loads(line) for line in attach.stdout.splitlines()]
    assert seen[0]["type"] == "started"
    steps = [e["step"] for e in seen if e["type"] == "metrics"]
    assert steps == list(range(2, 21, 2))  # every logged step, once, in order
    assert seen[-1]["type"] == "finished" and seen[-1]["result"]["steps"] == 20

    (listed,) = jobs_json(ws)
    assert listed["id"] == job["id"] and listed["state"] == "finished"
    assert listed["exit_code"] == 0 and listed["ended"] >= listed["started"]
    assert (ws / "models" / "m" / "checkpoint.safetensors").is_file()
    assert "swapdeck train" in " ".join(listed["command"])

    human = swapdeck("jobs", "attach", job["id"], "-w", ws)
    assert human.returncode == 0 and "finished" in human.stdout


@pytest.mark.slow
def test_save_now_then_stop_saves_a_checkpoint(ws: Path) -> None:
    from engine.jobs import save_now, stop_job

    job = start(ws, "m", "--steps", "100000", "--save-every", "100000")
    wait_for(lambda: last_step(ws, job["id"]) >= 2, what="training to start")
    save_now(Workspace(ws), job["id"])
    saved = wait_for(
        lambda: [e for e in events(ws, job["id"]) if "(requested)" in e.get("what", "")],
        what="the requested save",
    )
    assert saved[0]["type"] == "saved"

    result = swapdeck("jobs", "stop", job["id"], "-w", ws, "--json")
    assert result.returncode == 0, result.stderr
    stopped = json.loads(result.stdout)
    assert stopped["state"] == "stopped" and stopped["exit_code"] == 0
    final = events(ws, job["id"])[-1]
    assert final["type"] == "finished" and final["result"]["stopped"] is True
    step = final["result"]["steps"]
    from engine.train.checkpoint import read_info

    assert read_info(ws / "models" / "m" / "checkpoint.safetensors")["step"] == step
    # A stopped job cannot be stopped again, and says why.
    again = swapdeck("jobs", "stop", job["id"], "-w", ws)
    assert again.returncode == 2 and "not running" in again.stderr
    with pytest.raises(Exception, match="not running"):
        stop_job(Workspace(ws), job["id"])


@pytest.mark.slow
def test_killed_job_shows_failed_and_leaves_no_stale_lock(ws: Path) -> None:
    job = start(ws, "m", "--steps", "100000")
    # One training process per model: a second job is refused while the first runs.
    second = swapdeck("train", "-w", ws, "-m", "m", "--steps", "10", "--detach")
    assert second.returncode == 2 and "already being trained" in second.stderr
    assert "Traceback" not in second.stderr
    foreground = swapdeck("train", "-w", ws, "-m", "m", "--steps", "10")
    assert foreground.returncode == 2 and "already being trained" in foreground.stderr

    wait_for(lambda: last_step(ws, job["id"]) >= 2, what="training to start")
    os.kill(job["pid"], signal.SIGKILL)
    wait_for(lambda: jobs_json(ws)[0]["state"] == "failed", what="the job to show failed")
    (dead,) = jobs_json(ws)
    assert "ended without a word" in dead["reason"] and "after step" in dead["reason"]

    # The OS dropped the lock with the process: the same model starts cleanly again.
    again = start(ws, "m", "--steps", "4", "--save-every", "2")
    attach = swapdeck("jobs", "attach", again["id"], "-w", ws, "--json", timeout=300)
    assert attach.returncode == 0
    assert json.loads(attach.stdout.splitlines()[-1])["type"] == "finished"
    states = {j["id"]: j["state"] for j in jobs_json(ws)}
    assert states == {job["id"]: "failed", again["id"]: "finished"}


def test_job_survives_its_parent_and_a_hangup(ws: Path, tmp_path: Path) -> None:
    # A shell in its own session starts the job, then the whole session is hung up,
    # as when an SSH connection drops.
    script = tmp_path / "start.sh"
    script.write_text(
        f"{' '.join(SWAPDECK)} train -w {ws} -m m -a a -b b --preset tiny --steps 100000 "
        "--detach --json > job.json\nsleep 600\n"
    )
    shell = subprocess.Popen(
        ["bash", str(script)],
        cwd=tmp_path,
        start_new_session=True,
        # A hangup must end the shell even where the runner ignores SIGHUP (nohup), which
        # its children would otherwise inherit.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        _hang_up_and_check(ws, tmp_path, shell)
    finally:  # a failing check must not leave a 100000-step job eating a core
        for listed in jobs_json(ws):
            if listed["state"] == "running":
                swapdeck("jobs", "stop", listed["id"], "-w", ws, "--force")


def _hang_up_and_check(ws: Path, tmp_path: Path, shell: subprocess.Popen) -> None:
    job = wait_for(
        lambda: (
            (tmp_path / "job.json").stat().st_size > 0
            if (tmp_path / "job.json").exists()
            else False
        ),
        what="the job id",
    )
    job = json.loads((tmp_path / "job.json").read_text())
    os.killpg(shell.pid, signal.SIGHUP)
    shell.wait(timeout=30)
    time.sleep(1)
    (listed,) = jobs_json(ws)
    assert listed["state"] == "running"
    os.kill(job["pid"], 0)  # still there
    result = swapdeck("jobs", "stop", job["id"], "-w", ws)
    assert result.returncode == 0 and "stopped" in result.stdout


def test_bad_job_ids_and_foreign_jobs(ws: Path) -> None:
    missing = swapdeck("jobs", "attach", "nope", "-w", ws)
    assert missing.returncode == 3 and "no job 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    for command in (["stop", "../x"], ["logs", "/etc/passwd"]):
        result = swapdeck("jobs", *command, "-w", ws)
        assert result.returncode == 3, result.stderr
    empty = swapdeck("jobs", "list", "-w", ws)
    assert empty.returncode == 0 and "no jobs yet" in empty.stderr
    detach_ddp = swapdeck("train", "-w", ws, "-m", "m", "--gpus", "2", "--detach")
    assert detach_ddp.returncode == 2 and "--detach" in detach_ddp.stderr


def test_jobs_stop_refuses_another_users_job(ws: Path) -> None:
    """A job folder owned by someone else (as root, chown makes one) is not ours to stop."""
    if os.getuid() != 0:
        pytest.skip("needs root to make a folder another user owns")
    from engine.jobs import Job, _write

    folder = ws / "jobs" / "other-1"
    folder.mkdir(parents=True)
    _write(
        Job(id="other-1", kind="train", model="m", workspace=str(ws), command=[], spec={},
            state="running", pid=os.getpid(), folder=folder)
    )  # fmt: skip
    os.chown(folder, 12345, 12345)
    result = swapdeck("jobs", "stop", "other-1", "-w", ws)
    assert result.returncode == 2 and "belongs to another user" in result.stderr


def test_jobs_list_shows_each_jobs_kind(tmp_path: Path) -> None:
    """Plain and --json, for a training job and one of a kind this swapdeck does not know."""
    from engine.jobs import Job, _write

    ws = tmp_path / "ws"
    for n, kind in enumerate(["train", "from-a-newer-swapdeck"]):
        folder = ws / "jobs" / f"{kind}-1"
        folder.mkdir(parents=True)
        _write(
            Job(id=folder.name, kind=kind, model="m", workspace=str(ws), command=["swapdeck"],
                spec={}, state="finished", started=1000.0 + n, folder=folder)
        )  # fmt: skip
    listed = jobs_json(ws)
    assert [(j["id"], j["kind"]) for j in listed] == [
        ("from-a-newer-swapdeck-1", "from-a-newer-swapdeck"),
        ("train-1", "train"),
    ]
    keys = {"id", "kind", "model", "workspace", "command", "spec", "state", "pid", "started",
            "ended", "exit_code", "reason", "folder"}  # fmt: skip
    assert keys <= set(listed[0])
    table = subprocess.run(
        [*SWAPDECK, "jobs", "list", "-w", str(ws)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    cells = [[c.strip() for c in line.split("│")[1:4]] for line in table.stdout.splitlines()]
    assert "kind" in table.stdout.splitlines()[1]
    assert ["train-1", "train", "m"] in cells
    assert ["from-a-newer-swapdeck-1", "from-a-newer-swapdeck", "m"] in cells
