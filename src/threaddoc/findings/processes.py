"""A parent waiting on a process pool whose worker process is stuck in its task."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import and_list, thread_ref, wait_evidence
from .model import Confidence, Evidence, Finding, ResourceRef, Severity

_WAITS_ON_POOL = (WaitKind.FUTURE_RESULT, WaitKind.FUTURES_WAIT, WaitKind.EXECUTOR_SHUTDOWN)

Child = tuple[Snapshot, Sequence[ThreadAnalysis]]


def detect_process_pool_waits(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], children: Sequence[Child]
) -> list[Finding]:
    if not children or not _has_process_pool(analyses):
        return []
    waiting = [a for a in analyses if a.wait.kind in _WAITS_ON_POOL and a.wait.has_timeout is not True]
    stuck = [(child, worker) for child in children if (worker := _stuck_worker(child)) is not None]
    if not waiting or not stuck:
        return []
    evidence: list[Evidence] = [at for a in waiting if (at := wait_evidence(a, snapshot)) is not None]
    for (child_snapshot, _), worker in stuck:
        at = wait_evidence(worker, child_snapshot,
                           note=f"worker process {child_snapshot.process.pid} {worker.wait.summary}")
        if at is not None:
            evidence.append(at)
    pids = [str(child_snapshot.process.pid) for (child_snapshot, _), _ in stuck]
    names = [a.thread.label for a in waiting]
    what = stuck[0][1]
    return [Finding(
        kind="blocked-shutdown",
        severity=Severity.CRITICAL,
        confidence=Confidence.LIKELY,
        title=(f"{and_list(names)} wait{'s' * (len(names) == 1)} on a process pool whose worker process "
               f"{', '.join(pids)} {what.wait.summary} and will not return a result"),
        explanation=(
            f"{and_list(names)} wait{'s' * (len(names) == 1)} with no timeout for a result (or for the "
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
    _, analyses = child
    for analysis in analyses:
        in_task = any(frame.module == "concurrent.futures.process" and frame.method_name == "_process_worker"
                      for frame in analysis.thread.frames)
        if in_task and analysis.wait.activity is not Activity.RUNNING and \
                analysis.wait.kind is not WaitKind.POOL_IDLE:
            return analysis
    return None

