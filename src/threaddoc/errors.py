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


class TargetExited(NoSuchProcess):
    """The target existed when the diagnosis began and is gone (or a zombie) now."""


class PidReused(TargetExited):
    """The PID now names another process (a different start time): one report must never
    mix two processes' stacks."""


class AlreadyTraced(TargetError):
    """Another debugger (gdb, strace, a second py-spy that did not let go) is attached:
    ptrace allows one tracer, so py-spy cannot pause the target."""


class UnsupportedPython(NotPython):
    """A CPython whose interpreter layout threaddoc does not read (outside 3.8 to 3.13)."""


# A signal that ends threaddoc ends it as shells report a command killed by it: 128+N.
_SIGNAL_WORDS = {1: ("SIGHUP", "hung up"), 2: ("SIGINT", "interrupted"), 15: ("SIGTERM", "terminated")}


class Interrupted(BaseException):  # not an Exception: an `except Exception` must let it through
    """SIGINT, SIGTERM or SIGHUP arrived: py-spy is stopped, the target left as it was found,
    and threaddoc exits with 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum

    def one_line(self) -> str:
        name, word = _SIGNAL_WORDS.get(self.signum, (f"signal {self.signum}", "stopped"))
        return f"threaddoc: {word} ({name}) before the diagnosis finished; the target was left as it was"


class InterpreterLayoutMismatch(TargetError):
    """The memory collector read something its structure offsets do not explain (another
    patch release's internal layout): it refuses rather than report garbage."""


class MemoryCollectorUnsupported(NotPython):
    """The memory collector cannot read this interpreter (yet): no frame walker for its version."""


class MemoryReadTimedOut(TargetError):
    """Reading the target's memory took longer than --timeout."""
