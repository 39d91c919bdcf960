"""Checking a path a user named before anything opens it, and showing paths safely."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from engine.errors import BadInputError, NotFoundError


def printable(path: Path | str) -> str:
    """A path as valid UTF-8 text, for JSON and terminals that insist on it.

    A name that is not UTF-8 (lone surrogates in Python) shows its odd bytes as \\xNN.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def link_problem(path: Path) -> str | None:
    """Why a symbolic link leads nowhere, or None when `path` is no such link."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path} is a symbolic link loop"
        return f"{path} is a symbolic link to {target}, which does not exist"
    return None


_NOT_FILES = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def check_path(path: Path, what: str = "file") -> bool:
    """Check that a path the user named can be read; True for a folder, False for a file.

    Every way a path can fail to be a readable file (missing, a dangling link or a link
    loop, a name too long for the system, no permission, a pipe or a device that would
    block or never end) becomes one clear SwapdeckError here, before anything opens it.
    """
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        problem = link_problem(path)
        if problem:
            raise NotFoundError(problem, "fix the link or remove it") from None
        raise NotFoundError(f"{path} does not exist", "check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInputError(
                link_problem(path) or f"{path} goes through a symbolic link loop",
                "fix the link or remove it",
            ) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise BadInputError(
                f"{path} is a path too long for this system ({len(os.fsencode(path))} bytes)",
                "move or rename it to a shorter path",
            ) from None
        raise BadInputError(
            f"cannot read {path} ({exc.strerror})", "check that it exists and its permissions"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        return True
    for test, kind in _NOT_FILES:
        if test(info.st_mode):
            # Opening a pipe waits for a writer, and a device may never end: refused unread.
            article = "an" if what[0] in "aeiou" else "a"
            raise BadInputError(f"{path} is {kind}, not {article} {what}", f"give a regular {what}")
    if info.st_size == 0:
        raise BadInputError(
            f"{path} is empty (0 bytes)", "an interrupted copy or download? copy it again"
        )
    return False
