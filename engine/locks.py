"""One training process per model: an advisory lock the OS drops when its holder dies.

`flock` is tied to the open file, so a SIGKILLed trainer, a crashed job or a
machine restart never leaves a stale lock behind. The holder's pid is written
into the file only to name it in the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from engine.errors import BadInputError, WorkspaceError
from engine.workspace import Workspace, check_name


def lock_path(workspace: Workspace, model: str) -> Path:
    return workspace.models_dir / f".{check_name(model, 'model name')}.lock"


def lock_holder(workspace: Workspace, model: str) -> int | None:
    """The pid training `model` now, or None when nobody holds its lock."""
    path = lock_path(workspace, model)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def model_lock(workspace: Workspace, model: str) -> Iterator[None]:
    """Hold `model`'s training lock for the duration, or refuse with who holds it."""
    path = lock_path(workspace, model)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the lock file {path} ({exc.strerror})",
            "check the workspace is writable",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (pid {text})" if text.isdigit() else ""
            raise BadInputError(
                f"model {model} is already being trained by another process{who}",
                "wait for it, or stop it with 'swapdeck jobs stop ID' ('swapdeck jobs list')",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock
