"""Security: what swapdeck creates is its owner's alone, and it works without a network.

Every command runs here as a real process, under a permissive umask (000) and with the
network cut twice over: an audit hook (tests/faults/netblock/sitecustomize.py) refuses
and logs each connection, name lookup or HTTP request in Python, and, where this
machine allows it, `unshare -rn` puts the process in a network namespace of its own
with no interfaces up. The only download swapdeck may make is face-alignment's weights,
when the fan backend is chosen: it must be announced before it is tried.

`jobs stop` refusing another user's job is tests/cli/test_jobs.py's. `demo` is left out
(it trains for minutes); each of its stages runs here on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clips import short_clip
from cliutil import SAMPLE, SWAPDECK, error_line

from engine.errors import ExitCode

NETBLOCK = Path(__file__).resolve().parent / "netblock"
S3FD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


UNSHARE = ["unshare", "-rn"] if _unshare_works() else []


class Offline:
    """Runs commands with the network blocked and umask 000; `log` lists every attempt."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "network.log"
        self.log.touch()
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(NETBLOCK), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "SWAPDECK_NET_LOG": str(self.log),
            # An empty torch hub: nothing may be fetched into, or read from, the user's.
            "TORCH_HOME": str(folder / "torch_home"),
            "COLUMNS": "200",
        }

    def run(self, *args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*UNSHARE, *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=lambda: os.umask(0),  # the most permissive umask there is
        )

    def swapdeck(self, *args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.run(SWAPDECK, *args, timeout=timeout)

    def attempts(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Offline:
    """The blocking works: a plain lookup and an HTTP request are refused and logged."""
    net = Offline(tmp_path_factory.mktemp("offline"))
    probe = (
        "import socket, urllib.request\n"
        "for call in (lambda: socket.getaddrinfo('example.com', 443),\n"
        "             lambda: urllib.request.urlopen('https://example.com', timeout=5)):\n"
        "    try:\n"
        "        call()\n"
        "    except PermissionError:\n"
        "        print('refused')\n"
    )
    done = net.run(sys.executable, "-c", probe)
    assert done.stdout.split() == ["refused", "refused"], done.stdout + done.stderr
    assert len(net.attempts()) == 2
    net.log.write_text("")
    return net


class Session:
    """A whole session of commands run offline in a new workspace, in the order a
    user runs them; each command's process is kept for the tests to look at."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = root / "ws"
        self.done: dict[str, subprocess.CompletedProcess[str]] = {}
        self.copied: list[Path] = []  # made by this test, not by swapdeck


@pytest.fixture(scope="module")
def session(
    offline: Offline, sample_workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    s = Session(tmp_path_factory.mktemp("session"))
    ws, run = s.ws, offline.swapdeck
    photos = sorted((SAMPLE / "a").glob("*.jpg"))[:2]
    s.done["extract"] = run("extract", *photos, "-w", ws, "-f", "new", "--backend", "dlib")
    # Training wants more faces than two photos give: the session's facesets, copied in.
    for name in ("a", "b"):
        target = ws / "facesets" / name
        shutil.copytree(sample_workspace.faceset_dir(name), target)
        s.copied.append(target)
    s.done["faceset show"] = run("faceset", "show", "new", "-w", ws, "--json")
    s.done["faceset list"] = run("faceset", "list", "-w", ws, "--json")
    s.done["train --detach"] = run(
        "train", "-w", ws, "-m", "tiny", "-a", "a", "-b", "b", "--preset", "tiny",
        "--steps", "3", "--batch-size", "4", "--save-every", "3", "--preview-every", "3",
        "--snapshot-every", "3", "--detach", "--json",
    )  # fmt: skip
    job = json.loads(s.done["train --detach"].stdout or "{}").get("id", "none")
    s.done["jobs attach"] = run("jobs", "attach", job, "-w", ws, "--json")
    s.done["jobs list"] = run("jobs", "list", "-w", ws, "--json")
    s.done["jobs logs"] = run("jobs", "logs", job, "-w", ws)
    clip = short_clip(s.root / "clip.mp4", 0.5)
    swapped = s.root / "swapped.mp4"
    s.done["convert"] = run(
        "convert", clip, "-w", ws, "-m", "tiny", "-o", swapped, "--backend", "dlib"
    )
    s.done["score"] = run(
        "score", clip, swapped, "-w", ws, "-m", "tiny", "--backend", "dlib", "--json"
    )
    s.done["verify"] = run("verify", swapped, "--json")
    s.done["doctor"] = run("doctor", "-w", ws, "--json")
    yield s


@pytest.mark.slow
@pytest.mark.report("commands working with the network blocked")
def test_every_command_works_offline(offline: Offline, session: Session, record_property) -> None:
    ok = 0
    failures = []
    for command, done in session.done.items():
        if done.returncode == 0 and "Traceback" not in done.stderr:
            ok += 1
        else:
            failures.append(f"{command}: exit {done.returncode}\n{done.stderr[-2000:]}")
    jobs = json.loads(session.done["jobs list"].stdout)
    assert [j["state"] for j in jobs] == ["finished"], jobs
    assert json.loads(session.done["verify"].stdout)["marked"] is True
    record_property("tried", len(session.done))
    record_property("ok", ok if not offline.attempts() else 0)
    assert not failures, "\n".join(failures)
    assert offline.attempts() == [], "a command reached for the network"


@pytest.mark.slow
@pytest.mark.report("commands working with the network blocked")
def test_fan_download_is_announced_first_and_fails_clearly(
    offline: Offline, tmp_path: Path
) -> None:
    """The one download there is: said before it is tried, and one line when it cannot be."""
    photo = sorted((SAMPLE / "a").glob("*.jpg"))[0]
    offline.log.write_text("")
    done = offline.swapdeck(
        "extract", photo, "-w", tmp_path / "ws", "-f", "f", "--backend", "fan", "--json"
    )
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr
    line = error_line(done.stderr, done.stdout)
    assert "could not be downloaded" in line and "s3fd" in line
    hub = Path(offline.env["TORCH_HOME"]) / "hub" / "checkpoints"
    assert S3FD_URL in line and str(hub) in line, line
    events = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    infos = [e for e in events if e["type"] == "info" and "download" in e["message"]]
    assert len(infos) == 1 and str(hub) in infos[0]["message"], events
    attempts = offline.attempts()
    assert attempts, "the download was never tried, so the test proves nothing"
    first_attempt = float(attempts[0].split()[0])
    assert infos[0]["t"] <= first_attempt, (infos, attempts)
    assert all("adrianbulat.com" in a for a in attempts), attempts
    assert not hub.exists() or not any(hub.iterdir())  # nothing half-written


def _loose(path: Path) -> str | None:
    """What is wrong with a path's mode, if anything: a folder others can read or enter,
    a file others can write."""
    mode = stat.S_IMODE(path.lstat().st_mode)
    if path.is_symlink():
        return None
    if path.is_dir() and mode & 0o077:
        return f"folder {path} has mode {mode:o}"
    if path.is_file() and mode & 0o022:
        return f"file {path} has mode {mode:o}"
    return None


@pytest.mark.slow
@pytest.mark.report("private folders and foreign jobs")
def test_workspace_and_job_folders_are_private_under_umask_000(
    session: Session, record_property
) -> None:
    ws = session.ws
    assert session.done["extract"].returncode == 0, session.done["extract"].stderr
    (job,) = (ws / "jobs").iterdir()
    # The folders DESIGN.md names, each made by a command above, none by this test.
    expected = [
        ws, ws / "facesets", ws / "models", ws / "jobs", ws / "outputs",
        ws / "facesets" / "new", ws / "facesets" / "new" / "faces",
        ws / "models" / "tiny", ws / "models" / "tiny" / "previews",
        ws / "models" / "tiny" / "snapshots", job,
    ]  # fmt: skip
    for folder in expected:
        assert folder.is_dir(), f"{folder} was not made"
    checked, problems = 0, []
    for folder, dirs, files in os.walk(ws):
        here = Path(folder)
        if any(here == c or c in here.parents for c in session.copied):
            dirs.clear()
            continue
        for path in [here, *(here / f for f in files)]:
            checked += 1
            if problem := _loose(path):
                problems.append(problem)
    assert checked > len(expected) + 5
    record_property("tried", len(expected))
    record_property("ok", sum(1 for f in expected if _loose(f) is None))
    assert not problems, "\n".join(problems)
