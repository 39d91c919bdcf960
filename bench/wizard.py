"""Wizard benchmark: time to the first screen, and the wizard's CPU use while it follows a job.

    python bench/wizard.py [--follow-seconds 20]

Runs `swapdeck wizard` in a real terminal (tmux) as a user would:

1. Start-up: from launching the command to the Workspace screen being drawn
   (polled with capture-pane every 5 ms), the median of 5 launches, beside
   `python -c pass` and `swapdeck --help` launched the same way in the same run.
   Target: under 1 s.
2. Following: a detached `tiny` training job runs on the sample facesets; the
   wizard opens its Train screen, re-attaches, and follows it live (loss chart,
   stats, preview). The wizard process's own CPU time over the window, as a share
   of one core. Target: under 5%.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import ExtractConfig, RunSettings, build  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

SWAPDECK = [sys.executable, "-m", "tui"]  # what the `swapdeck` script runs


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for_text(session: str, text: str, timeout: float, every: float = 0.005) -> float:
    """Seconds until `text` is on the pane."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if text in screen(session):
            return time.perf_counter() - start
        time.sleep(every)
    raise RuntimeError(f"{text!r} did not appear within {timeout} s:\n{screen(session)}")


def launch(session: str, command: list[str], cwd: Path) -> None:
    tmux("kill-session", "-t", session)
    shell = " ".join(command)
    # The pane stays after the command ends so its last output can be read.
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(cwd),
         f"{shell}; sleep 30"],
        check=True,
    )  # fmt: skip


def time_to_text(command: list[str], text: str, cwd: Path, runs: int = 5) -> float:
    times = []
    for i in range(runs):
        session = f"bench-start-{i}"
        start = time.perf_counter()
        launch(session, command, cwd)
        wait_for_text(session, text, timeout=30)
        times.append(time.perf_counter() - start)
        tmux("kill-session", "-t", session)
    return statistics.median(times)


def make_workspace(root: Path) -> Workspace:
    from engine.extract import extract

    ws = Workspace(root)
    for name in ("a", "b"):
        config = build(
            ExtractConfig, sources=[ROOT / "sample_data" / name], faceset=name, backend="dlib"
        )
        extract(config, ws)
    return ws


def wizard_pid(session: str) -> psutil.Process:
    pane = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
    shell = psutil.Process(pane)
    for proc in shell.children(recursive=True):  # the pane's shell says "wizard" too
        if "python" in proc.name() and "wizard" in proc.cmdline():
            return proc
    raise RuntimeError("no wizard process under the tmux pane")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follow-seconds", type=float, default=20.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed (apt-get install tmux)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ws = make_workspace(tmp_path / "ws")
        marker = "Facesets"  # drawn by the Workspace screen
        python = time_to_text([sys.executable, "-c", "'print(\"ready\")'"], "ready", tmp_path)
        helptext = time_to_text([*SWAPDECK, "--help"], "Usage", tmp_path)
        wizard = time_to_text([*SWAPDECK, "wizard", "-w", str(ws.root)], marker, tmp_path)
        print(f"python -c pass: {python:.3f} s")
        print(f"swapdeck --help: {helptext:.3f} s")
        print(f"wizard first screen: {wizard:.3f} s (target < 1 s; {wizard / python:.1f}x python)")

        from engine.jobs import start_train, stop_job

        run = build(RunSettings, steps=1_000_000, log_every=5, preview_every=50, save_every=10**6)
        requested = {"faceset_a": "a", "faceset_b": "b", "preset": "tiny"}
        job = start_train(ws, "bench", requested, run)
        try:
            session = "bench-follow"
            launch(session, [*SWAPDECK, "wizard", "-w", str(ws.root)], tmp_path)
            wait_for_text(session, marker, timeout=30)
            tmux("send-keys", "-t", session, "t")
            wait_for_text(session, "step", timeout=60, every=0.1)
            time.sleep(5)  # past the history replay and the first chart draw
            proc = wizard_pid(session)
            before = proc.cpu_times()
            start = time.perf_counter()
            time.sleep(args.follow_seconds)
            after = proc.cpu_times()
            elapsed = time.perf_counter() - start
            used = (after.user - before.user) + (after.system - before.system)
            share = used / elapsed
            print(screen(session))
            print(
                f"wizard CPU while following job {job.id}: {used:.2f} s in {elapsed:.1f} s "
                f"= {share:.1%} of one core (target < 5%)"
            )
            tmux("kill-session", "-t", session)
        finally:
            stop_job(ws, job.id)
        print(f"FIRST_SCREEN_S {wizard:.3f}")
        print(f"FOLLOW_CPU {share:.4f}")


if __name__ == "__main__":
    main()
