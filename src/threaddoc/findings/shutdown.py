"""Exits that never finish: interpreter shutdown and executor shutdown waiting on threads
that will not end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc import sourcecode
from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import collapsed, labels, some_threads, thread_ref, wait_evidence
from .model import Confidence, Evidence, Finding, ResourceRef, Severity
from .pools import Pool, pool_of, thread_pools

KEEPS_ALIVE = "keeps the process alive"


@dataclass(frozen=True)
class Keeper:
    index: int
    reason: str  # why it will not end, in plain words


def detect_blocked_shutdown(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]) -> list[Finding]:
    findings = []
    pools = thread_pools(analyses)
    for index, analysis in enumerate(analyses):
        if analysis.wait.kind is WaitKind.SHUTDOWN:
            candidates = _exit_waits_for(snapshot, analyses, index, pools)
            what = "interpreter exit"
        elif analysis.wait.kind is WaitKind.EXECUTOR_SHUTDOWN:
            candidates = _shutdown_waits_for(analyses, index, pools)
            what = "executor shutdown"
        else:
            continue
        keepers = [keeper for i in candidates if (keeper := _stuck(snapshot, analyses, i)) is not None]
        if keepers:
            findings.append(_finding(snapshot, analyses, index, keepers, what))
    return findings


def _exit_waits_for(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], exiting: int, pools: Sequence[Pool]
) -> list[int]:
    """The threads interpreter exit joins: every non-daemon thread (threading._shutdown),
    or the pool workers (concurrent.futures' atexit hook)."""
    if analyses[exiting].thread.frames and any(
            frame.method_name == "_python_exit" for frame in analyses[exiting].thread.frames):
        return [i for pool in pools for i in pool.workers]
    daemons = _daemon_targets(snapshot)
    return [i for i, analysis in enumerate(analyses)
            if i != exiting and analysis.thread.target not in daemons]


def _shutdown_waits_for(analyses: Sequence[ThreadAnalysis], index: int, pools: Sequence[Pool]) -> list[int]:
    """`executor.shutdown(wait=True)` (or the end of `with executor:`) joins every worker of
    the pool it is joining now."""
    joined = next((frame.local("self") for frame in analyses[index].thread.frames
                   if frame.module == "threading" and frame.method_name == "join"), None)
    if joined is None or joined.address is None:
        return [i for pool in pools for i in pool.workers]
    worker = next((i for i, a in enumerate(analyses) if a.thread.thread_object_address == joined.address),
                  None)
    pool = pool_of(pools, worker) if worker is not None else None
    if pool is not None:
        return list(pool.workers)
    return [worker] if worker is not None else []


def _stuck(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], index: int) -> Keeper | None:
    """Why a thread the exit waits for will not end; None when it is making progress or
    idle in a way that ends with the exit (an idle pool worker is told to stop)."""
    analysis = analyses[index]
    wait = analysis.wait
    if wait.activity is Activity.RUNNING or wait.kind is WaitKind.POOL_IDLE:
        return None
    frame = analysis.site_frame
    source = snapshot.source(frame.filename) if frame is not None else None
    looping = source is not None and frame is not None and sourcecode.inside_infinite_loop(source, frame.line)
    if wait.kind is WaitKind.QUEUE_GET:
        return Keeper(index, "waits on queue.get() forever: nothing will put a stop sentinel")
    if wait.activity is Activity.IDLE:
        if looping:
            return Keeper(index, f"{wait.summary} in a `while True` loop with no stop signal")
        return Keeper(index, f"{wait.summary} and has no reason to stop")
    timeout = " with no timeout" if wait.has_timeout is not True else ""
    return Keeper(index, f"{wait.summary}{timeout}")


def _daemon_targets(snapshot: Snapshot) -> frozenset[str]:
    names: set[str] = set()
    for source in snapshot.sources.values():
        names |= sourcecode.daemon_thread_targets(source)
    return frozenset(names)


def _finding(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], waiting: int, keepers: list[Keeper], what: str
) -> Finding:
    waiter = analyses[waiting]
    names = labels([analyses[k.index] for k in keepers])
    kinds = {analyses[k.index].wait.kind for k in keepers}
    evidence: list[Evidence] = []
    for same in collapsed(keepers, lambda k: (_site(analyses[k.index]), k.reason)):
        first = analyses[same[0].index]
        who = first.thread.label if len(same) == 1 else \
            f"{some_threads(labels([analyses[k.index] for k in same]))}: each"
        at = wait_evidence(first, snapshot, note=f"{who} {same[0].reason}")
        if at is not None:
            evidence.append(at)
    if what == "executor shutdown":
        title = f"executor shutdown waits for {some_threads(names)}, which will not finish"
        explanation = (f"{waiter.thread.label} shuts a thread pool down with wait=True (explicitly, or at "
                       "the end of a `with ...Executor()` block) and waits for every submitted task; "
                       f"{some_threads(names)} is stuck in its task, so the shutdown never returns.")
        suggestions = fixes.executor_shutdown(kinds)
    else:
        title = f"interpreter exit is blocked by {some_threads(names)}"
        explanation = (f"{waiter.thread.label} has finished the script and waits for non-daemon threads "
                       f"to end before the process can exit; {some_threads(names)} will not end by "
                       f"{'itself' if len(names) == 1 else 'themselves'}.")
        suggestions = fixes.blocked_exit(kinds)
    return Finding(
        kind="blocked-shutdown",
        severity=Severity.CRITICAL,
        confidence=Confidence.LIKELY,
        title=title,
        explanation=explanation,
        threads=(thread_ref(waiter, what), *(thread_ref(analyses[k.index], KEEPS_ALIVE) for k in keepers)),
        resources=_pool_resources(analyses, keepers),
        evidence=tuple(evidence),
        suggestions=suggestions,
    )


def _pool_resources(analyses: Sequence[ThreadAnalysis], keepers: list[Keeper]) -> tuple[ResourceRef, ...]:
    pools = thread_pools(analyses)
    found = {pool.name: pool for k in keepers if (pool := pool_of(pools, k.index)) is not None}
    return tuple(ResourceRef("thread-pool", name, pool.size_text) for name, pool in found.items())



def _site(analysis: ThreadAnalysis) -> tuple[str, int, str] | None:
    frame = analysis.site_frame
    return (frame.filename, frame.line, frame.function) if frame is not None else None
