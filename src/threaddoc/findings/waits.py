"""Waits nobody will end: queues no live thread can feed or drain, events and conditions
no live thread can signal.

"No live thread can" is judged conservatively: every other thread is itself blocked
with no timeout (joining, waiting on locks, queues, events). A thread that is running,
sleeping in a loop or serving requests could still put or set, so no finding is made
then: an idle consumer of a healthy server is not a hang.
"""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot
from threaddoc.resolve import Key, ThreadAnalysis

from . import fixes
from .evidence import collapsed, labels, some_threads, thread_ref, wait_evidence
from .model import Confidence, Evidence, Finding, ResourceRef, Severity, Suggestion

_QUEUE_WAITS = (WaitKind.QUEUE_GET, WaitKind.QUEUE_PUT, WaitKind.QUEUE_JOIN)
_SIGNAL_WAITS = (WaitKind.EVENT_WAIT, WaitKind.CONDITION_WAIT, WaitKind.BARRIER)


def detect_unserved_waits(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]) -> list[Finding]:
    groups: dict[Key, list[int]] = {}
    for index, analysis in enumerate(analyses):
        resource = analysis.waits_for
        if (analysis.wait.kind in _QUEUE_WAITS + _SIGNAL_WAITS and analysis.wait.has_timeout is not True
                and resource is not None and resource.key is not None):
            groups.setdefault(resource.key, []).append(index)
    findings = []
    for waiters in groups.values():
        waiting = set(waiters)  # a set: thousands of waiters must not make this quadratic
        others = [a for i, a in enumerate(analyses) if i not in waiting]
        if any(not _stuck_for_good(other) for other in others):
            continue
        findings.append(_finding(snapshot, analyses, waiters, others))
    return findings


def _stuck_for_good(analysis: ThreadAnalysis) -> bool:
    """Blocked with no timeout: it will not run any code until what it waits for happens."""
    wait = analysis.wait
    return (wait.activity is Activity.BLOCKED and wait.has_timeout is not True
            and wait.kind is not WaitKind.IDLE_OTHER)


def _finding(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], waiters: list[int], others: list[ThreadAnalysis]
) -> Finding:
    first = analyses[waiters[0]]
    resource = first.waits_for
    assert resource is not None
    kinds = {analyses[i].wait.kind for i in waiters}
    names = labels([analyses[i] for i in waiters])
    what = resource.name
    evidence = _waiters_evidence(snapshot, [analyses[i] for i in waiters])
    nobody = ("no other thread is left" if not others else
              "every other thread is itself blocked for good: " + _what_others_do(others))
    if kinds & set(_QUEUE_WAITS):
        kind = "queue-starvation"
        title, explanation, suggestions = _queue_texts(names, what, kinds, nobody)
    else:
        kind = "unsignalled-wait"
        verb = {WaitKind.EVENT_WAIT: "set", WaitKind.CONDITION_WAIT: "notify",
                WaitKind.BARRIER: "reach"}[next(iter(kinds))]
        title = (f"{some_threads(names)} wait{'s' * (len(names) == 1)} on {what}, "
                 f"which no live thread can {verb}")
        explanation = (f"{some_threads(names)} wait{'s' * (len(names) == 1)} with no timeout for {what}; "
                       f"{nobody}. Nothing will ever {verb} it.")
        suggestions = fixes.unsignalled_wait(kinds, what)
    return Finding(
        kind=kind,
        severity=Severity.CRITICAL,
        confidence=Confidence.LIKELY,
        title=title,
        explanation=explanation,
        threads=tuple(thread_ref(analyses[i], f"waits on {what}") for i in waiters)
        + tuple(thread_ref(o, o.wait.summary) for o in others),
        resources=(ResourceRef(resource.kind, what, resource.detail, label=resource.label or what),),
        evidence=tuple(evidence),
        suggestions=suggestions,
    )


def _queue_texts(
    names: list[str], what: str, kinds: set[WaitKind], nobody: str
) -> tuple[str, str, tuple[Suggestion, ...]]:
    if WaitKind.QUEUE_JOIN in kinds:
        consumers = "a consumer is waiting in get() on the same queue, so it took every item, " \
            if WaitKind.QUEUE_GET in kinds else ""
        title = f"{some_threads(names)}: {what}.join() waits for tasks that will never be marked done"
        explanation = (f"join() returns when every item got has been marked with task_done(); "
                       f"{consumers}but some were never marked done, and {nobody}.")
    elif WaitKind.QUEUE_PUT in kinds:
        title = f"{some_threads(names)} wait{'s' * (len(names) == 1)} to put into the full queue {what}, " \
            "which no live thread will drain"
        explanation = f"The queue is full and {nobody}: no thread will get() from it again."
    else:
        title = f"{some_threads(names)} wait{'s' * (len(names) == 1)} on {what}.get(), " \
            "which no live thread will feed"
        explanation = (f"The queue is empty and {nobody}: no thread will put() into it again "
                       "(its producer has finished or died without sending a stop sentinel).")
    return title, explanation, fixes.queue_starvation(kinds, what)



def _waiters_evidence(snapshot: Snapshot, waiters: list[ThreadAnalysis]) -> list[Evidence]:
    """Where each waiter waits, and how; many waiting the same way at one line are one entry."""
    evidence: list[Evidence] = []
    for same in collapsed(waiters, lambda w: (_site(w), w.wait.summary)):
        first = same[0]
        note = f"{first.thread.label} {first.wait.summary}" if len(same) == 1 else \
            f"{some_threads(labels(same))}: each {first.wait.summary}"
        at = wait_evidence(first, snapshot, note=note)
        if at is not None:
            evidence.append(at)
    return evidence


def _site(analysis: ThreadAnalysis) -> tuple[str, int, str] | None:
    frame = analysis.site_frame
    return (frame.filename, frame.line, frame.function) if frame is not None else None


def _what_others_do(others: list[ThreadAnalysis]) -> str:
    """`"a" joins b; "c" waits for a lock`, with many doing the same thing counted once:
    `9,874 threads (request-1, … and 9,871 more): each waits for a lock`."""
    return "; ".join(
        f"{same[0].thread.label} {same[0].wait.summary}" if len(same) == 1 else
        f"{some_threads(labels(same))}: each {same[0].wait.summary}"
        for same in collapsed(others, lambda o: o.wait.summary))
