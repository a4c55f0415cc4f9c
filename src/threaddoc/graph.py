"""The wait-for graph: thread -> thread edges, and the cycles among them.

An edge `A -> B` says A cannot go on until B does something: B holds the lock A
waits for, or A joins B.  A cycle is a deadlock; a thread whose edges lead into
a cycle is blocked behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from threaddoc.classify import WaitKind
from threaddoc.resolve import Held, Key, Resource, ThreadAnalysis


@dataclass(frozen=True)
class Edge:
    waiter: int  # index of the waiting thread
    holder: int  # index of the thread it waits for
    resource: Resource
    via: str  # "lock" or "join"
    held: Held | None = None  # where the holder took the lock


@dataclass(frozen=True)
class WaitGraph:
    edges: tuple[Edge, ...]
    by_waiter: Mapping[int, tuple[Edge, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, edges: Sequence[Edge]) -> WaitGraph:
        by_waiter: dict[int, list[Edge]] = {}
        for edge in edges:
            by_waiter.setdefault(edge.waiter, []).append(edge)
        return cls(tuple(edges), {node: tuple(out) for node, out in by_waiter.items()})

    def out_of(self, node: int) -> tuple[Edge, ...]:
        return self.by_waiter.get(node, ())


def build_graph(analyses: Sequence[ThreadAnalysis]) -> WaitGraph:
    edges: list[Edge] = []
    thread_index = {
        address: index
        for index, analysis in enumerate(analyses)
        if (address := analysis.thread.thread_object_address) is not None
    }
    holders = _holders_by_key(analyses)
    for waiter, analysis in enumerate(analyses):
        resource = analysis.waits_for
        if resource is None or resource.key is None:
            continue
        if analysis.wait.kind.is_lock:
            edges.extend(_lock_edges(waiter, resource, holders.get(resource.key, ())))
        elif analysis.wait.kind is WaitKind.THREAD_JOIN and resource.address in thread_index:
            edges.append(Edge(waiter, thread_index[resource.address], resource, "join"))
    return WaitGraph.of(edges)


def _holders_by_key(analyses: Sequence[ThreadAnalysis]) -> dict[Key, list[tuple[int, Held]]]:
    """Who holds each lock, and where it took it (innermost frame first, as the stack reads)."""
    holders: dict[Key, list[tuple[int, Held]]] = {}
    for index, analysis in enumerate(analyses):
        for held in analysis.holds:
            if held.resource.key is None:
                continue
            owners = holders.setdefault(held.resource.key, [])
            if not owners or owners[-1][0] != index:
                owners.append((index, held))
    return holders


def _lock_edges(waiter: int, resource: Resource, holders: Sequence[tuple[int, Held]]) -> list[Edge]:
    return [
        Edge(waiter, holder, resource, "lock", held)
        for holder, held in holders
        # Its owner re-enters an RLock without waiting: no edge to itself.
        if not (holder == waiter and resource.lock_type == "RLock")
    ]


def find_cycles(graph: WaitGraph, size: int) -> list[tuple[Edge, ...]]:
    """Elementary cycles, each reported once, starting at its lowest thread index."""
    cycles: list[tuple[Edge, ...]] = []
    seen: set[frozenset[int]] = set()

    def walk(start: int, node: int, path: list[Edge], visited: set[int]) -> None:
        for edge in graph.out_of(node):
            if edge.holder == start:
                members = frozenset(e.waiter for e in [*path, edge])
                if members not in seen:
                    seen.add(members)
                    cycles.append((*path, edge))
            elif edge.holder > start and edge.holder not in visited:
                walk(start, edge.holder, [*path, edge], visited | {edge.holder})

    for start in range(size):
        walk(start, start, [], {start})
    return cycles


def blocked_behind(graph: WaitGraph, members: frozenset[int]) -> list[tuple[int, Edge]]:
    """Threads outside `members` whose chain of waits leads into them, with their first edge."""
    blocked: list[tuple[int, Edge]] = []
    reaches = set(members)
    changed = True
    while changed:
        changed = False
        for edge in graph.edges:
            if edge.waiter not in reaches and edge.holder in reaches:
                reaches.add(edge.waiter)
                blocked.append((edge.waiter, edge))
                changed = True
    return blocked
