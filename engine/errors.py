"""Every user mistake is a SwapdeckError: a message, a hint, an exit code.

The CLI turns them into one line on stderr and the exit code; the TUI shows
them in one dialog. Anything else escaping the engine is a bug.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    INTERNAL = 1
    BAD_INPUT = 2
    NOT_FOUND = 3
    NO_FACES = 4
    WORKSPACE = 5
    CORRUPT = 6
    UNAVAILABLE = 7
    CANCELLED = 130


class SwapdeckError(Exception):
    """A problem the user can fix: what is wrong, and what to do about it."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        return self.one_line()


class BadInputError(SwapdeckError):
    exit_code = ExitCode.BAD_INPUT


class NotFoundError(SwapdeckError):
    exit_code = ExitCode.NOT_FOUND


class NoFacesError(SwapdeckError):
    """The run worked, but the sources hold no usable face."""

    exit_code = ExitCode.NO_FACES


class WorkspaceError(SwapdeckError):
    exit_code = ExitCode.WORKSPACE


class CorruptError(SwapdeckError):
    exit_code = ExitCode.CORRUPT


class UnavailableError(SwapdeckError):
    """A backend or device that this machine cannot provide."""

    exit_code = ExitCode.UNAVAILABLE


class CancelledError(SwapdeckError):
    exit_code = ExitCode.CANCELLED
