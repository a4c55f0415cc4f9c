"""A process tree: a parent waiting on a process pool whose worker process is stuck in its
task, and child processes found stuck (`--children`), grouped when they are stuck the same
way ("3 of 3 child processes: same lock-order-deadlock")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import labels, some_threads, thread_ref, wait_evidence, waiters_evidence
from .model import Confidence, Evidence, Finding, ResourceRef, Severity

_WAITS_ON_POOL = (WaitKind.FUTURE_RESULT, WaitKind.FUTURES_WAIT, WaitKind.EXECUTOR_SHUTDOWN)

Child = tuple[Snapshot, Sequence[ThreadAnalysis], Sequence[Finding]]

# Waits of a parent on its children's work.
_WAITS_ON_CHILDREN = frozenset({WaitKind.FUTURE_RESULT, WaitKind.FUTURES_WAIT, WaitKind.EXECUTOR_SHUTDOWN,
                                WaitKind.POOL_RESULT, WaitKind.SUBPROCESS_WAIT,
                                WaitKind.SUBPROCESS_COMMUNICATE})


def detect_process_pool_waits(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], children: Sequence[Child]
) -> list[Finding]:
    if not children or not _has_process_pool(analyses):
        return []
    waiting = [a for a in analyses if a.wait.kind in _WAITS_ON_POOL and a.wait.has_timeout is not True]
    stuck = [(child, worker) for child in children if (worker := _stuck_worker(child)) is not None]
    if not waiting or not stuck:
        return []
    evidence: list[Evidence] = waiters_evidence(waiting, snapshot, one="", many="wait here")
    for (child_snapshot, _, _), worker in stuck:
        at = wait_evidence(worker, child_snapshot,
                           note=f"worker process {child_snapshot.process.pid} {worker.wait.summary}")
        if at is not None:
            evidence.append(at)
    pids = [str(child_snapshot.process.pid) for (child_snapshot, _, _), _ in stuck]
    names = labels(waiting)
    what = stuck[0][1]
    return [Finding(
        kind="blocked-shutdown",
        severity=Severity.CRITICAL,
        confidence=Confidence.LIKELY,
        title=(f"{some_threads(names)} wait{'s' * (len(names) == 1)} on a process pool whose worker process "
               f"{', '.join(pids)} {what.wait.summary} and will not return a result"),
        explanation=(
            f"{some_threads(names)} wait{'s' * (len(names) == 1)} with no timeout for a result (or for the "
            f"pool to shut down); worker process {', '.join(pids)} is alive but not computing: it is "
            "blocked in "
            f"its task ({what.wait.summary}), so the result never comes. "
            f"`threaddoc diagnose {pids[0]}` shows the worker in full."
        ),
        threads=tuple(thread_ref(a, "waits on the process pool") for a in waiting),
        resources=tuple(ResourceRef("process", pid, "worker process") for pid in pids),
        evidence=tuple(evidence),
        suggestions=fixes.process_pool_wait(),
    )]


def _has_process_pool(analyses: Sequence[ThreadAnalysis]) -> bool:
    return any(frame.module == "concurrent.futures.process"
               for analysis in analyses for frame in analysis.thread.frames)


def _stuck_worker(child: Child) -> ThreadAnalysis | None:
    """The thread of a worker process that runs a task and is blocked in it (not computing,
    not waiting for the next task)."""
    _, analyses, _ = child
    for analysis in analyses:
        in_task = any(frame.module == "concurrent.futures.process" and frame.method_name == "_process_worker"
                      for frame in analysis.thread.frames)
        if in_task and analysis.wait.activity is not Activity.RUNNING and \
                analysis.wait.kind is not WaitKind.POOL_IDLE:
            return analysis
    return None



Signature = frozenset[tuple[str, frozenset[tuple[str, int]]]]


def signature(findings: Sequence[Finding]) -> Signature:
    """How a process is stuck: the kinds of its critical findings and the lines of code they
    point at. Processes running the same code stuck in the same place share it."""
    return frozenset((finding.kind, frozenset((e.file, e.line) for e in finding.evidence))
                     for finding in findings if finding.severity is Severity.CRITICAL)


def detect_stuck_children(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], children: Sequence[Child],
    already_reported: frozenset[str] = frozenset(),
) -> list[Finding]:
    """One finding per way the child processes are stuck, in the parent's report."""
    stuck = [child for child in children
             if str(child[0].process.pid) not in already_reported and signature(child[2])]
    groups: dict[Signature, list[Child]] = {}
    for child in stuck:
        groups.setdefault(signature(child[2]), []).append(child)
    waiting = [a for a in analyses if a.wait.kind in _WAITS_ON_CHILDREN and a.wait.has_timeout is not True]
    return [_stuck_children_finding(group, len(children), waiting, snapshot) for group in groups.values()]


def _stuck_children_finding(group: Sequence[Child], total: int, waiting: Sequence[ThreadAnalysis],
                            snapshot: Snapshot) -> Finding:
    lead_snapshot, _, lead_findings = group[0]
    lead = next(f for f in lead_findings if f.severity is Severity.CRITICAL)
    pids = [str(child[0].process.pid) for child in group]
    one = len(group) == 1
    who = f"child process {pids[0]}" if one else \
        f"{len(group)} of {total} child processes ({', '.join(pids)})"
    how = f"in a {lead.kind}: {lead.title}" if one else f"the same way, in a {lead.kind}: {lead.title}"
    names = labels(waiting)
    if waiting:
        title = (f"{some_threads(names)} wait{'s' * (len(names) == 1)} on {who}, "
                 f"{'which is' if one else 'all'} stuck {how}")
    else:
        title = f"{who} {'is' if one else 'are'} stuck {how}"
    explanation = (
        f"{lead.explanation} "
        + (f"Processes {', '.join(pids)} are stuck at the same lines of the same code. "
           if len(group) > 1 else "")
        + (f"{some_threads(names)} wait{'s' * (len(names) == 1)} with no timeout for "
           f"{'it' if len(group) == 1 else 'them'}, so this process is stuck too." if waiting else "")
    )
    evidence = waiters_evidence(waiting, snapshot, one="", many="wait here")
    evidence.extend(lead.evidence)
    return Finding(
        kind=lead.kind,
        severity=Severity.CRITICAL,
        confidence=lead.confidence,
        title=title,
        explanation=explanation,
        threads=(*(thread_ref(a, f"waits on {who}") for a in waiting),
                 *(dataclasses.replace(ref, role=f"in process {pids[0]}: {ref.role}".rstrip(": "))
                   for ref in lead.threads)),
        resources=(*(ResourceRef("process", pid, "child process") for pid in pids), *lead.resources),
        cycle=lead.cycle,
        evidence=tuple(evidence),
        suggestions=(*lead.suggestions,
                     *(fixes.child_process_wait({a.wait.kind for a in waiting}) if waiting else ())),
        notes=(f"`threaddoc diagnose {pids[0]}` shows process {pids[0]} in full "
               f"({lead_snapshot.process.num_threads or len(lead_snapshot.threads)} threads).",
               *lead.notes),
    )
