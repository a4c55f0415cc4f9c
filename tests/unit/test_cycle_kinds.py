"""Which finding kind a cycle becomes: lock-order, self or join deadlock."""

from __future__ import annotations

import dataclasses

from threaddoc.classify import WaitKind, WaitState
from threaddoc.findings import Confidence, Finding
from threaddoc.findings.deadlock import detect_cycles
from threaddoc.graph import build_graph
from threaddoc.model import Frame, KernelState, Local, ProcessFacts, Snapshot, Thread
from threaddoc.resolve import Held, Resource, ThreadAnalysis


def _thread(name: str, tid: int, address: int) -> Thread:
    bootstrap = Frame("Thread._bootstrap", "/usr/lib/python3.11/threading.py", 1, "threading", True,
                      (Local("self", address, "Thread", True),))
    own = Frame("work", "/app/work.py", 10, "work", False)
    return Thread(name, tid, tid, False, False, (own, bootstrap))


def _lock(name: str, lock_type: str = "Lock") -> Resource:
    return Resource("lock", name, ("global", "work", name), "module global in work", lock_type)


def _waits_lock(thread: Thread, lock: Resource, holds: tuple[Held, ...] = ()) -> ThreadAnalysis:
    return ThreadAnalysis(thread, WaitState(WaitKind.LOCK, "waits for a lock", site=0), lock, holds)


def _detect(*analyses: ThreadAnalysis) -> list[str]:
    snapshot = Snapshot(ProcessFacts(pid=1), tuple(a.thread for a in analyses))
    return [finding.kind for finding in detect_cycles(snapshot, analyses, build_graph(analyses))]


def test_a_thread_waiting_for_a_lock_it_holds_is_a_self_deadlock() -> None:
    lock = _lock("cache_lock")
    worker = _waits_lock(_thread("worker", 11, 0x100), lock, (Held(lock, 0, 5, "with"),))
    assert _detect(worker) == ["self-deadlock"]


def test_two_threads_holding_each_others_lock_is_a_lock_order_deadlock() -> None:
    a, b = _lock("a"), _lock("b")
    one = _waits_lock(_thread("one", 11, 0x100), b, (Held(a, 0, 5, "with"),))
    two = _waits_lock(_thread("two", 12, 0x200), a, (Held(b, 0, 5, "with"),))
    assert _detect(one, two) == ["lock-order-deadlock"]


def test_joining_a_thread_that_waits_for_a_lock_you_hold_is_a_join_deadlock() -> None:
    lock = _lock("state_lock")
    worker_thread = _thread("worker", 12, 0x200)
    joined = Resource("thread", "worker", ("object", 0x200, ""), "Thread at 0x200", address=0x200)
    main = ThreadAnalysis(_thread("MainThread", 11, 0x100),
                          WaitState(WaitKind.THREAD_JOIN, "joins a thread", site=0), joined,
                          (Held(lock, 0, 5, "with"),))
    worker = _waits_lock(worker_thread, lock)
    assert _detect(main, worker) == ["join-deadlock"]


def test_waiting_behind_a_holder_is_no_cycle() -> None:
    lock = _lock("a")
    holder = ThreadAnalysis(_thread("holder", 11, 0x100),
                            WaitState(WaitKind.SLEEP, "sleeps", site=0), None, (Held(lock, 0, 5, "with"),))
    waiter = _waits_lock(_thread("waiter", 12, 0x200), lock)
    assert _detect(holder, waiter) == []


def test_an_rlock_held_by_its_waiter_is_no_self_deadlock() -> None:
    lock = _lock("cache_lock", "RLock")
    worker = _waits_lock(_thread("worker", 11, 0x100), lock, (Held(lock, 0, 5, "with"),))
    assert _detect(worker) == []


def _in_futex(analysis: ThreadAnalysis, address: int) -> ThreadAnalysis:
    thread = dataclasses.replace(analysis.thread, kernel=KernelState("S", "futex", (address, 0x189)))
    return dataclasses.replace(analysis, thread=thread)


def _cycle_with_a_third_waiter(second_futex: int, third_futex: int) -> Finding:
    a, b = _lock("a"), _lock("b")
    one = _waits_lock(_thread("one", 11, 0x100), b, (Held(a, 0, 5, "with"),))
    two = _in_futex(_waits_lock(_thread("two", 12, 0x200), a, (Held(b, 0, 5, "with"),)), second_futex)
    three = _in_futex(_waits_lock(_thread("three", 13, 0x300), a), third_futex)
    analyses = (one, two, three)
    snapshot = Snapshot(ProcessFacts(pid=1), tuple(x.thread for x in analyses))
    [finding] = detect_cycles(snapshot, analyses, build_graph(analyses))
    return finding


def test_the_kernel_agreeing_on_a_lock_is_noted() -> None:
    finding = _cycle_with_a_third_waiter(0x5000, 0x5000)
    assert finding.confidence is Confidence.LIKELY
    assert any("all sleep on futex 0x5000" in note for note in finding.notes)
    assert [ref.name for ref, _ in finding.blocked] == ["three"]


def test_the_kernel_contradicting_the_source_makes_the_deadlock_only_possible() -> None:
    finding = _cycle_with_a_third_waiter(0x5000, 0x6000)
    assert finding.confidence is Confidence.POSSIBLE
    assert any("different futexes" in note for note in finding.notes)
