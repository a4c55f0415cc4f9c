"""A forked child waiting on a lock that a thread of its parent held at the fork."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.graph import WaitGraph
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import thread_ref, wait_evidence
from .model import Confidence, Finding, ResourceRef, Severity


def detect_fork_inherited_locks(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], graph: WaitGraph
) -> list[Finding]:
    facts = snapshot.process
    if not facts.looks_forked:
        return []
    findings = []
    for index, analysis in enumerate(analyses):
        lock = analysis.waits_for
        if not analysis.wait.kind.is_lock or lock is None or analysis.wait.has_timeout is True:
            continue
        if graph.out_of(index):
            continue  # a thread of this process holds it: not an inherited lock
        label = lock.label or lock.name
        at = wait_evidence(analysis, snapshot, note=f"{analysis.thread.label} waits for {label}")
        findings.append(Finding(
            kind="fork-inherited-lock",
            severity=Severity.CRITICAL,
            confidence=Confidence.LIKELY,
            title=(f"{analysis.thread.label} waits for {label}, which no thread of this forked "
                   f"process holds: it was held in the parent ({facts.ppid}) at the fork"),
            explanation=(
                f"Process {facts.pid} was forked from {facts.ppid} (same command line, no exec). "
                "fork() copies memory but only the forking thread: a lock that another thread of "
                f"the parent held at that moment is copied locked, with no thread left to release "
                f"it. {analysis.thread.label} waits for {label} and nothing in this process holds it."
            ),
            threads=(thread_ref(analysis, f"waits for {label}"),),
            resources=(ResourceRef("lock", lock.name, lock.detail, lock.lock_type, label),),
            evidence=(at,) if at is not None else (),
            suggestions=fixes.fork_inherited_lock(lock.name),
        ))
    return findings
