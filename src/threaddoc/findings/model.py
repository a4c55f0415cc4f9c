"""What a finding says: the report's vocabulary, independent of how it is rendered."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Confidence(str, enum.Enum):
    CONFIRMED = "confirmed"
    LIKELY = "likely"
    POSSIBLE = "possible"


class Verdict(str, enum.Enum):
    DEADLOCK = "deadlock"
    HANG = "hang"
    BUSY = "busy"
    NO_HANG = "no-hang"


@dataclass(frozen=True)
class ThreadRef:
    name: str
    os_thread_id: int | None
    role: str = ""


@dataclass(frozen=True)
class Evidence:
    """A place in the program's source, with the line as written."""

    file: str
    line: int
    function: str
    code: str
    note: str = ""


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    name: str  # as the program spells it at the wait
    detail: str = ""
    lock_type: str | None = None
    label: str = ""  # unambiguous: `ledger_lock`, `Account._lock`, `Account@0x7f…._lock`
    library: str | None = None  # a lock kept inside a library object: "logging.Handler"
    task: str | None = None  # a future: the function submitted for it


@dataclass(frozen=True)
class CycleStep:
    """One link of a deadlock cycle: `thread` waits for `resource`, held by `held_by`."""

    thread: ThreadRef
    resource: ResourceRef
    waits_at: Evidence | None
    held_by: ThreadRef
    taken_at: Evidence | None
    via: str  # "lock" or "join"
    held_as: ResourceRef | None = None  # the lock as the holder's code spells it (`left` vs `right`)


@dataclass(frozen=True)
class Suggestion:
    summary: str
    example: str = ""


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: Severity
    confidence: Confidence
    title: str
    explanation: str
    threads: tuple[ThreadRef, ...] = ()
    resources: tuple[ResourceRef, ...] = ()
    cycle: tuple[CycleStep, ...] = ()
    blocked: tuple[tuple[ThreadRef, Evidence | None], ...] = ()
    evidence: tuple[Evidence, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    notes: tuple[str, ...] = ()
