"""The wait-for graph: thread -> thread edges, and the cycles among them.

An edge `A -> B` says A cannot go on until B does something: B holds the lock A
waits for, or A joins B.  A cycle is a deadlock; a thread whose edges lead into
a cycle is blocked behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from threaddoc.classify import WaitKind
from threaddoc.resolve import UNKNOWN_MODULE, Held, Key, Resource, ThreadAnalysis


@dataclass(frozen=True)
class Edge:
    waiter: int  # index of the waiting thread
    holder: int  # index of the thread it waits for
    resource: Resource
    via: str  # "lock", "join", "future" or "import"
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
        if resource is None:
            continue
        if analysis.wait.kind is WaitKind.FUTURE_RESULT and resource.task is not None:
            # A future is tied to its task by the program's spelling, with or without an identity.
            edges.extend(_future_edges(waiter, resource, analyses))
            continue
        if resource.key is None:
            continue
        if analysis.wait.kind.is_lock:
            edges.extend(_lock_edges(waiter, resource, holders.get(resource.key, ())))
        elif analysis.wait.kind is WaitKind.THREAD_JOIN and resource.address in thread_index:
            edges.append(Edge(waiter, thread_index[resource.address], resource, "join"))
        elif analysis.wait.kind is WaitKind.THREAD_JOIN and resource.by_name:
            edges.extend(_join_edges_by_name(waiter, resource, analyses))
        elif analysis.wait.kind is WaitKind.IMPORT_LOCK:
            edges.extend(Edge(waiter, holder, held.resource if resource.key == UNKNOWN_MODULE else resource,
                              "import", held)
                         for holder, held in _import_holders(holders, resource) if holder != waiter)
    return WaitGraph.of(edges)


def _holders_by_key(analyses: Sequence[ThreadAnalysis]) -> dict[Key, list[tuple[int, Held]]]:
    """Who holds each lock, and where it first took it: an RLock re-entered deeper in the
    stack was acquired at its outermost `with`, the others only raise its count."""
    holders: dict[Key, list[tuple[int, Held]]] = {}
    for index, analysis in enumerate(analyses):
        first_taken: dict[Key, Held] = {}
        for held in analysis.holds:
            if held.resource.key is None:
                continue
            known = first_taken.get(held.resource.key)
            if known is None or (held.frame, -held.line) > (known.frame, -known.line):
                first_taken[held.resource.key] = held
        for key, held in first_taken.items():
            holders.setdefault(key, []).append((index, held))
    return holders


def _lock_edges(waiter: int, resource: Resource, holders: Sequence[tuple[int, Held]]) -> list[Edge]:
    if resource.by_name:
        # Known by name only, the waiter's own `self._lock` looks like the `other._lock` it
        # waits for: another thread holding that name is the likelier holder; only a plain
        # Lock held by no one else can be its own.
        others = [(holder, held) for holder, held in holders if holder != waiter]
        holders = others or ([] if resource.lock_type != "Lock" else holders)
    return [
        Edge(waiter, holder, resource, "lock", held)
        for holder, held in holders
        # Its owner re-enters an RLock without waiting: no edge to itself.
        if not (holder == waiter and resource.lock_type == "RLock")
    ]


def _import_holders(
    holders: Mapping[Key, list[tuple[int, Held]]], resource: Resource
) -> list[tuple[int, Held]]:
    """Who is importing the module a thread waits for. When the module is not named in the
    waiter's code (`importlib.import_module(name)`), any import in progress elsewhere is a
    candidate: the edge then names the module that thread imports."""
    if resource.key is None:
        return []
    if resource.key != UNKNOWN_MODULE:
        return list(holders.get(resource.key, ()))
    return [owner for key, owners in holders.items() if key[0] == "module" for owner in owners]


def _join_edges_by_name(waiter: int, resource: Resource, analyses: Sequence[ThreadAnalysis]) -> list[Edge]:
    """The thread started for the joined variable, by the name or the target function it
    was started with; only when exactly one thread fits."""
    label = resource.key[2] if resource.key is not None and len(resource.key) == 3 else ""
    fits = [index for index, analysis in enumerate(analyses)
            if index != waiter and ((label and analysis.thread.name == label)
                                    or (resource.task and analysis.thread.target == resource.task))]
    return [Edge(waiter, fits[0], resource, "join")] if len(fits) == 1 else []


def _future_edges(waiter: int, resource: Resource, analyses: Sequence[ThreadAnalysis]) -> list[Edge]:
    """The worker running the waited future's task. Only when exactly one worker runs that
    function: with several, which one serves this future is unknown, and guessing could
    invent a cycle."""
    runners = [index for index, analysis in enumerate(analyses)
               if analysis.runs_task == resource.task and index != waiter]
    return [Edge(waiter, runners[0], resource, "future")] if len(runners) == 1 else []


def find_cycles(graph: WaitGraph, size: int) -> list[tuple[Edge, ...]]:
    """One cycle per knot of mutually waiting threads (strongly connected component),
    through its lowest-numbered thread. Linear in threads and edges: thousands of
    blocked threads must not make this the slow stage."""
    cycles = []
    for component in _strongly_connected(graph, size):
        start = min(component)
        if len(component) == 1 and not any(e.holder == start for e in graph.out_of(start)):
            continue
        cycle = _ring(graph, component) or _path_back(graph, start, component)
        if cycle:
            cycles.append(cycle)
    return sorted(cycles, key=lambda cycle: cycle[0].waiter)


def _strongly_connected(graph: WaitGraph, size: int) -> list[set[int]]:
    """Tarjan's algorithm, iteratively (no recursion limit on long chains)."""
    index: dict[int, int] = {}
    lowlink: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[set[int]] = []
    counter = 0
    for root in range(size):
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            node, edge_position = work.pop()
            if edge_position == 0:
                index[node] = lowlink[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph.out_of(node)
            if edge_position < len(edges):
                work.append((node, edge_position + 1))
                successor = edges[edge_position].holder
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
                continue
            if lowlink[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
    return components


def _ring(graph: WaitGraph, component: set[int]) -> tuple[Edge, ...]:
    """Locks known by name only make every holder of that name a candidate, so the shortest
    cycle is arbitrary among them: when the whole knot is one ring in thread order, name
    every thread of it, as a read with addresses would."""
    if len(component) < 3 or not any(edge.resource.by_name for node in component
                                     for edge in graph.out_of(node)):
        return ()
    members = sorted(component)
    ring = []
    for waiter, holder in zip(members, members[1:] + members[:1]):
        edge = next((e for e in graph.out_of(waiter) if e.holder == holder), None)
        if edge is None:
            return ()
        ring.append(edge)
    return tuple(ring)


def _path_back(graph: WaitGraph, start: int, component: set[int]) -> tuple[Edge, ...]:
    """The shortest cycle from `start` back to itself inside its component (breadth first)."""
    came_by: dict[int, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in graph.out_of(node):
                if edge.holder == start:
                    path = [edge]
                    while path[0].waiter != start:
                        path.insert(0, came_by[path[0].waiter])
                    return tuple(path)
                if edge.holder in component and edge.holder not in came_by:
                    came_by[edge.holder] = edge
                    following.append(edge.holder)
        frontier = following
    return ()


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
