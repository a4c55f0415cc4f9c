"""Resolution (what each thread waits for and holds) and the wait-for graph."""

from __future__ import annotations

import pytest
from conftest import RECORDINGS, load_recording

from threaddoc.classify import WaitKind
from threaddoc.findings import Verdict
from threaddoc.graph import Edge, WaitGraph, blocked_behind, find_cycles
from threaddoc.pipeline import Report, analyse_recording
from threaddoc.resolve import Resource


def _wait_report(name: str) -> Report:
    return analyse_recording(load_recording((RECORDINGS / "waits" / f"{name}.json").read_text()))


def test_lock_order_threads_wait_for_globals_held_by_each_other(lock_order_report: Report) -> None:
    threads = {a.thread.name: a for a in lock_order_report.analyses}
    for waiter, waited, holder_lock in (("teller-1", "audit_lock", "ledger_lock"),
                                         ("teller-2", "ledger_lock", "audit_lock")):
        analysis = threads[waiter]
        assert analysis.wait.kind is WaitKind.LOCK
        assert analysis.waits_for is not None
        assert analysis.waits_for.name == waited
        assert analysis.waits_for.key == ("global", "lock_order_deadlock", waited)
        assert analysis.waits_for.lock_type == "Lock"
        assert [held.resource.name for held in analysis.holds] == [holder_lock]


def test_main_thread_join_resolves_to_the_joined_thread(lock_order_report: Report) -> None:
    main = next(a for a in lock_order_report.analyses if a.thread.name == "MainThread")
    assert main.wait.kind is WaitKind.THREAD_JOIN
    assert main.waits_for is not None and main.waits_for.name == "teller-1"


@pytest.mark.parametrize("minor", ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"])
def test_rlock_is_recognised_from_its_type(minor: str) -> None:
    report = _wait_report(f"rlock_acquire-py{minor}")
    waiter = next(a for a in report.analyses if a.thread.name == "waiter")
    assert waiter.wait.kind is WaitKind.RLOCK
    assert waiter.waits_for is not None and waiter.waits_for.lock_type == "RLock"


@pytest.mark.parametrize("program", ["lock_acquire", "lock_acquire_call", "rlock_acquire"])
@pytest.mark.parametrize("minor", ["3.8", "3.13"])
def test_lock_passed_as_argument_is_matched_by_address(program: str, minor: str) -> None:
    report = _wait_report(f"{program}-py{minor}")
    names = [a.thread.name for a in report.analyses]
    edges = [(names[e.waiter], names[e.holder], e.via) for e in report.graph.edges]
    assert edges == [("waiter", "holder", "lock")]
    # Blocked behind a holder is not a deadlock (the program does hang: the holder waits on
    # an Event nobody sets, which is reported as such).
    assert report.verdict is not Verdict.DEADLOCK
    assert {f.kind for f in report.findings} <= {"unsignalled-wait"}


@pytest.mark.parametrize("minor", ["3.8", "3.11", "3.13"])
def test_join_edge_between_threads(minor: str) -> None:
    report = _wait_report(f"thread_join-py{minor}")
    names = [a.thread.name for a in report.analyses]
    assert [(names[e.waiter], names[e.holder], e.via) for e in report.graph.edges] == [
        ("waiter", "sleeper", "join")]


def _edge(waiter: int, holder: int, name: str = "l") -> Edge:
    return Edge(waiter, holder, Resource("lock", name, key=("global", "m", name)), "lock")


def test_find_cycles_reports_each_cycle_once() -> None:
    graph = WaitGraph.of([_edge(0, 1, "a"), _edge(1, 2, "b"), _edge(2, 0, "c"), _edge(3, 0, "a")])
    cycles = find_cycles(graph, 4)
    assert [[edge.waiter for edge in cycle] for cycle in cycles] == [[0, 1, 2]]
    assert [waiter for waiter, _ in blocked_behind(graph, frozenset({0, 1, 2}))] == [3]


def test_find_cycles_sees_a_self_loop_and_no_cycle_in_a_chain() -> None:
    assert len(find_cycles(WaitGraph.of([_edge(0, 0)]), 1)) == 1
    assert find_cycles(WaitGraph.of([_edge(0, 1), _edge(1, 2)]), 3) == []


@pytest.mark.parametrize("minor", ["3.8", "3.13"])
def test_condition_wait_releases_the_condition(minor: str) -> None:
    # The waiter sits in `with cond: cond.wait()`: while it waits, it does not hold `cond`.
    report = _wait_report(f"condition_wait-py{minor}")
    waiter = next(a for a in report.analyses if a.thread.name == "waiter")
    assert waiter.wait.kind is WaitKind.CONDITION_WAIT
    assert waiter.wait.expression == "cond"
    assert [held.resource.name for held in waiter.holds] == []


def test_a_chain_of_thousands_of_waits_is_walked_without_recursion() -> None:
    chain = [_edge(index, index + 1, f"l{index}") for index in range(5000)]
    assert find_cycles(WaitGraph.of(chain), 5001) == []
    ring = WaitGraph.of([*chain, _edge(5000, 0, "back")])
    [cycle] = find_cycles(ring, 5001)
    assert len(cycle) == 5001
