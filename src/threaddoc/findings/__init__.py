"""Findings: each detector is a pure function of the analysed snapshot."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.graph import WaitGraph
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from .busy import BUSY_KINDS, detect_busy
from .deadlock import detect_cycles
from .event_loop import detect_blocked_event_loops
from .executor import detect_executor_starvation
from .forks import detect_fork_inherited_locks
from .io import detect_io_hangs
from .model import Confidence, Finding, Severity, Verdict
from .processes import Child, detect_process_pool_waits, detect_stuck_children
from .shutdown import KEEPS_ALIVE, detect_blocked_shutdown
from .waits import detect_unserved_waits

__all__ = ["BUSY_KINDS", "DEADLOCK_KINDS", "Confidence", "Finding", "Severity", "Verdict", "find_all",
           "verdict_of"]

DEADLOCK_KINDS = frozenset({"lock-order-deadlock", "self-deadlock", "join-deadlock", "future-cross-wait",
                            "import-lock-deadlock"})


def find_all(
    snapshot: Snapshot,
    analyses: Sequence[ThreadAnalysis],
    graph: WaitGraph,
    children: Sequence[Child] = (),
) -> tuple[Finding, ...]:
    pool_waits = detect_process_pool_waits(snapshot, analyses, children)
    findings = [
        *detect_cycles(snapshot, analyses, graph),
        *detect_executor_starvation(snapshot, analyses),
        *detect_blocked_shutdown(snapshot, analyses),
        *pool_waits,
        *detect_stuck_children(snapshot, analyses, children, frozenset(
            ref.name for finding in pool_waits for ref in finding.resources if ref.kind == "process")),
        *detect_unserved_waits(snapshot, analyses),
        *detect_io_hangs(snapshot, analyses, graph),
        *detect_blocked_event_loops(snapshot, analyses),
        *detect_fork_inherited_locks(snapshot, analyses, graph),
        *detect_busy(snapshot, analyses),
    ]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(_without_restatements(findings), key=lambda finding: order[finding.severity]))


def _without_restatements(findings: list[Finding]) -> list[Finding]:
    """A blocked exit already names what its stuck threads wait for, with the fix: the same
    wait reported again as an unserved queue or event only repeats it."""
    keepers = {ref.name for finding in findings if finding.kind == "blocked-shutdown"
               for ref in finding.threads if ref.role == KEEPS_ALIVE}
    loops = {ref.name for finding in findings if finding.kind == "event-loop-blocked"
             for ref in finding.threads}
    return [finding for finding in findings if not _restates(finding, keepers, loops)]


def _restates(finding: Finding, keepers: set[str], loops: set[str]) -> bool:
    names = {ref.name for ref in finding.threads}
    if finding.kind in ("queue-starvation", "unsignalled-wait"):
        return {ref.name for ref in finding.threads if ref.role.startswith("waits on")} <= keepers
    if finding.kind == "blocking-io-no-timeout":
        # The blocked event loop says the same, and what to do about it in a coroutine.
        return names <= loops
    return False


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    critical = [finding for finding in findings if finding.severity is Severity.CRITICAL]
    if any(finding.kind in DEADLOCK_KINDS for finding in critical):
        return Verdict.DEADLOCK
    if critical:
        return Verdict.HANG
    if any(finding.kind in BUSY_KINDS for finding in findings):
        return Verdict.BUSY
    return Verdict.NO_HANG
