"""Cycles in the wait-for graph: lock-order, self and join deadlocks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from threaddoc.graph import Edge, WaitGraph, blocked_behind, find_cycles
from threaddoc.model import Snapshot, report_order
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import (
    and_list,
    held_evidence,
    labels,
    resource_ref,
    some_of,
    some_threads,
    thread_ref,
    wait_evidence,
)
from .model import Confidence, CycleStep, Finding, ResourceRef, Severity


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
    # A cycle's every member is printed step by step below; a title names up to eight.
    who = some_threads(labels([analyses[edge.waiter] for edge in cycle]))
    resources = tuple(dict.fromkeys(resource_ref(edge.resource) for edge in cycle))
    locks = [edge.resource.label or edge.resource.name for edge in cycle if edge.via == "lock"]
    notes, contradicted = _kernel_notes(analyses, cycle)
    if len(cycle) == 1 and cycle[0].via == "lock":
        kind, title = "self-deadlock", f"{names[0]} waits for {locks[0]}, which it already holds"
        suggestions = fixes.self_deadlock(cycle[0].resource.name, locks[0])
        explanation = (f"{names[0]} holds the non-reentrant Lock {locks[0]} and tries to acquire "
                       "it again (deeper in its own stack); a Lock cannot be re-entered, so it waits "
                       "for itself forever.")
    elif all(edge.via == "lock" for edge in cycle):
        kind = "lock-order-deadlock"
        title = f"{who} wait for each other's locks ({some_of(locks, 'locks')})"
        explanation = (
            "Each thread holds a lock that the next one in the cycle waits for, so none can "
            "proceed: the locks are acquired in different orders on different code paths."
        )
        suggestions = fixes.lock_order(_in_acquisition_order(cycle), _breaker(steps), _spellings(cycle))
    elif any(edge.via == "import" for edge in cycle):
        kind = "import-lock-deadlock"
        modules = [edge.resource.name for edge in cycle if edge.via == "import"]
        title = f"{who} deadlock on the import of {and_list(modules)}"
        explanation = (
            f"A thread executing the import of {and_list(modules)} (its module body runs under the "
            "module's import lock) waits for another thread, and that thread waits to import the "
            "same module: the import can never finish."
        )
        suggestions = fixes.import_lock(modules)
    elif not any(edge.via == "join" for edge in cycle):
        kind = "future-cross-wait"
        title = f"{who} wait for each other's futures"
        explanation = (
            "Each pool worker runs a task that waits for the result of a task running on the next "
            "worker of the cycle: no task can finish, so no future ever completes."
        )
        suggestions = fixes.future_cross_wait([edge.resource.task or "?" for edge in cycle
                                               if edge.via == "future"])
    else:
        kind = "join-deadlock"
        title = f"{who} wait for each other through Thread.join"
        explanation = ("A thread joins another thread that waits, directly or through a chain, "
                       "for the joining thread: neither can finish.")
        suggestions = fixes.join_cycle(_held_while_joining(steps))
    # Thread identities are exact; lock holders and future tasks are read from source.
    confidence = (Confidence.CONFIRMED if all(edge.via == "join" for edge in cycle)
                  else Confidence.LIKELY)
    if contradicted:
        confidence = Confidence.POSSIBLE
    by_name = [edge.resource.label or edge.resource.name for edge in cycle if edge.resource.by_name]
    if by_name:
        confidence = Confidence.POSSIBLE
        notes += (f"{and_list(list(dict.fromkeys(by_name)))} known by name only: the dump has no object "
                  "addresses, so objects of the same name cannot be told apart; a live diagnosis "
                  "(threaddoc diagnose PID) or py-spy's dump with --locals would confirm it",)
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
        notes=notes,
    )


def _kernel_notes(
    analyses: Sequence[ThreadAnalysis], cycle: tuple[Edge, ...]
) -> tuple[tuple[str, ...], bool]:
    """What the kernel says of the cycle's locks: threads that wait for one lock (by source)
    sleep on one futex address. Agreement confirms the identity; disagreement means the
    source reading is wrong somewhere, and the finding is only possible."""
    notes: list[str] = []
    contradicted = False
    for edge in cycle:
        if edge.via != "lock":
            continue
        addresses = [address for a in analyses
                     if a.waits_for is not None and a.waits_for.key == edge.resource.key
                     and (address := _futex(a)) is not None]
        label = edge.resource.label or edge.resource.name
        if len(addresses) >= 2 and len(set(addresses)) == 1:
            notes.append(f"kernel: the {len(addresses)} threads waiting for {label} all sleep on futex "
                         f"{addresses[0]:#x}: the same lock, as the source says")
        elif len(set(addresses)) > 1:
            contradicted = True
            notes.append(f"kernel: the threads waiting for {label} sleep on different futexes "
                         f"({', '.join(f'{a:#x}' for a in sorted(set(addresses)))}): they may not wait "
                         "for the same lock")
    return tuple(notes), contradicted


def _futex(analysis: ThreadAnalysis) -> int | None:
    return analysis.thread.kernel.futex_address if analysis.thread.kernel is not None else None


def _breaker(steps: tuple[CycleStep, ...]) -> fixes.Breaker | None:
    """The acquisition that breaks the order the first thread follows: the last thread of
    the cycle holds the lock the first one waits for last."""
    last, previous = steps[-1], steps[-2] if len(steps) > 1 else None
    if previous is None or previous.taken_at is None or last.waits_at is None:
        return None
    return fixes.Breaker(
        thread=last.thread.name,
        holds=previous.resource.label or previous.resource.name,
        acquired_at=f"{Path(previous.taken_at.file).name}:{previous.taken_at.line}",
        waits_for=last.resource.label or last.resource.name,
        waits_at=f"{Path(last.waits_at.file).name}:{last.waits_at.line}",
    )


def _held_while_joining(steps: tuple[CycleStep, ...]) -> list[tuple[str, str, str]]:
    """(joining thread, lock it holds that the joined side waits for, joined thread)."""
    pairs = []
    for index, step in enumerate(steps):
        if step.via != "join":
            continue
        waits_on_joiner = steps[index - 1]
        if waits_on_joiner.via == "lock":
            pairs.append((step.thread.name, waits_on_joiner.resource.name, step.held_by.name))
    return pairs


def _step(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], edge: Edge) -> CycleStep:
    waiter, holder = analyses[edge.waiter], analyses[edge.holder]
    return CycleStep(
        thread=thread_ref(waiter),
        resource=resource_ref(edge.resource),
        waits_at=wait_evidence(waiter, snapshot),
        held_by=thread_ref(holder),
        taken_at=held_evidence(holder, edge.held, snapshot) if edge.held is not None else None,
        via=edge.via,
        held_as=resource_ref(edge.held.resource) if edge.held is not None else None,
    )


def _spellings(cycle: tuple[Edge, ...]) -> list[str]:
    """Every name the code uses for the cycle's locks, waiting and holding (`right`, `left`)."""
    names = [edge.resource.name for edge in cycle]
    names += [edge.held.resource.name for edge in cycle if edge.held is not None]
    return list(dict.fromkeys(names))


def _in_acquisition_order(cycle: tuple[Edge, ...]) -> list[ResourceRef]:
    """The cycle's locks in the order its first thread takes them: it holds the lock the
    last thread waits for, then waits for the next; each following thread continues."""
    return [resource_ref(edge.resource) for edge in (cycle[-1], *cycle[:-1])]


def _role(edge: Edge) -> str:
    if edge.via == "join":
        return f"joins {edge.resource.name}"
    if edge.via == "future":
        return f"waits for the future {edge.resource.name}"
    return f"waits for {edge.resource.name}"

