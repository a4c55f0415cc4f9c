"""Cycles in the wait-for graph: lock-order, self and join deadlocks."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.graph import Edge, WaitGraph, blocked_behind, find_cycles
from threaddoc.model import Snapshot, report_order
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import held_evidence, resource_ref, thread_ref, wait_evidence
from .model import Confidence, CycleStep, Finding, Severity


def detect_cycles(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], graph: WaitGraph
) -> list[Finding]:
    return [
        _cycle_finding(snapshot, analyses, graph, _rotated(cycle, analyses))
        for cycle in find_cycles(graph, len(analyses))
    ]


def _rotated(cycle: tuple[Edge, ...], analyses: Sequence[ThreadAnalysis]) -> tuple[Edge, ...]:
    """Start the cycle at its first thread in report order, so reports read the same each run."""
    start = min(range(len(cycle)), key=lambda i: report_order(analyses[cycle[i].waiter].thread))
    return cycle[start:] + cycle[:start]


def _cycle_finding(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], graph: WaitGraph, cycle: tuple[Edge, ...]
) -> Finding:
    steps = tuple(_step(snapshot, analyses, edge) for edge in cycle)
    members = frozenset(edge.waiter for edge in cycle)
    blocked = tuple(
        (thread_ref(analyses[waiter], _role(edge)),
         wait_evidence(analyses[waiter], snapshot))
        for waiter, edge in blocked_behind(graph, members)
    )
    names = [analyses[edge.waiter].thread.label for edge in cycle]
    resources = tuple(dict.fromkeys(resource_ref(edge.resource) for edge in cycle))
    lock_names = [edge.resource.name for edge in cycle if edge.via == "lock"]
    if len(cycle) == 1 and cycle[0].via == "lock":
        kind, title = "self-deadlock", f"{names[0]} waits for {lock_names[0]}, which it already holds"
        suggestions = fixes.self_deadlock(lock_names[0])
        explanation = (f"{names[0]} holds the non-reentrant lock {lock_names[0]} and tries to "
                       "acquire it again; it can never succeed.")
    elif all(edge.via == "lock" for edge in cycle):
        kind = "lock-order-deadlock"
        title = f"{_and(names)} wait for each other's locks ({_and(lock_names)})"
        explanation = (
            "Each thread holds a lock that the next one in the cycle waits for, so none can "
            "proceed: the locks are acquired in different orders on different code paths."
        )
        suggestions = fixes.lock_order(_in_acquisition_order(cycle))
    else:
        kind = "join-deadlock"
        title = f"{_and(names)} wait for each other through Thread.join"
        explanation = ("A thread joins another thread that waits, directly or through a chain, "
                       "for the joining thread.")
        suggestions = fixes.join_cycle([analyses[edge.waiter].thread.name for edge in cycle])
    confidence = (Confidence.LIKELY if any(edge.via == "lock" for edge in cycle)
                  else Confidence.CONFIRMED)
    return Finding(
        kind=kind,
        severity=Severity.CRITICAL,
        confidence=confidence,
        title=title,
        explanation=explanation,
        threads=tuple(thread_ref(analyses[edge.waiter], "in cycle") for edge in cycle)
        + tuple(ref for ref, _ in blocked),
        resources=resources,
        cycle=steps,
        blocked=blocked,
        suggestions=suggestions,
    )


def _step(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], edge: Edge) -> CycleStep:
    waiter, holder = analyses[edge.waiter], analyses[edge.holder]
    return CycleStep(
        thread=thread_ref(waiter),
        resource=resource_ref(edge.resource),
        waits_at=wait_evidence(waiter, snapshot),
        held_by=thread_ref(holder),
        taken_at=held_evidence(holder, edge.held, snapshot) if edge.held is not None else None,
        via=edge.via,
    )


def _in_acquisition_order(cycle: tuple[Edge, ...]) -> list[str]:
    """The cycle's locks in the order the first thread takes them (held, then waited)."""
    names = []
    for edge in cycle:
        if edge.held is not None and edge.resource.name not in names:
            names.append(edge.resource.name)
    first_waited = cycle[0].resource.name
    # The first thread already holds the lock the last edge waits for.
    held_first = cycle[-1].resource.name
    ordered = [held_first] + [name for name in names if name != held_first]
    return ordered if first_waited in ordered else [*ordered, first_waited]


def _role(edge: Edge) -> str:
    return f"joins {edge.resource.name}" if edge.via == "join" else f"waits for {edge.resource.name}"


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
