"""Errors a user can meet, each with the remedy and the exit status it maps to.

The CLI prints `threaddoc: <message> — <remedy>` on one line and exits with
`exit_code`; no traceback ever reaches the user.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_NO_HANG = 0
EXIT_HANG = 1
EXIT_USAGE = 2
EXIT_CANNOT_INSPECT = 3


class ThreaddocError(Exception):
    """Base of every error threaddoc reports to the user."""

    exit_code: ClassVar[int] = EXIT_CANNOT_INSPECT

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def one_line(self) -> str:
        text = f"threaddoc: {self.message}"
        if self.remedy:
            text += f" — {self.remedy}"
        return " ".join(text.split())


class UsageError(ThreaddocError):
    exit_code = EXIT_USAGE


class TargetError(ThreaddocError):
    """The target process cannot be inspected (exit status 3)."""


class NoSuchProcess(TargetError):
    pass


class NotPython(TargetError):
    pass


class PermissionDenied(TargetError):
    pass


class PySpyMissing(TargetError):
    pass


class PySpyFailed(TargetError):
    pass


class PySpyTimedOut(PySpyFailed):
    pass


class TargetExited(TargetError):
    pass
