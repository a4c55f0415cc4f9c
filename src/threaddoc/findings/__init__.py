"""Findings: each detector is a pure function of the analysed snapshot."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.graph import WaitGraph
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from .deadlock import detect_cycles
from .executor import detect_executor_starvation
from .model import Confidence, Finding, Severity, Verdict
from .processes import detect_process_pool_waits
from .shutdown import detect_blocked_shutdown

__all__ = ["Confidence", "Finding", "Severity", "Verdict", "find_all", "verdict_of"]

DEADLOCK_KINDS = frozenset({"lock-order-deadlock", "self-deadlock", "join-deadlock", "future-cross-wait"})


def find_all(
    snapshot: Snapshot,
    analyses: Sequence[ThreadAnalysis],
    graph: WaitGraph,
    children: Sequence[tuple[Snapshot, Sequence[ThreadAnalysis]]] = (),
) -> tuple[Finding, ...]:
    findings = [
        *detect_cycles(snapshot, analyses, graph),
        *detect_executor_starvation(snapshot, analyses),
        *detect_blocked_shutdown(snapshot, analyses),
        *detect_process_pool_waits(snapshot, analyses, children),
    ]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(findings, key=lambda finding: order[finding.severity]))


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    critical = [finding for finding in findings if finding.severity is Severity.CRITICAL]
    if any(finding.kind in DEADLOCK_KINDS for finding in critical):
        return Verdict.DEADLOCK
    if critical:
        return Verdict.HANG
    return Verdict.NO_HANG
