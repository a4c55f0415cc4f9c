"""Lock, RLock and join deadlocks in real-world shapes, on every CPython 3.8-3.13
(recordings of the hung samples), and the negatives that must not be called deadlocks."""

from __future__ import annotations

import pytest
from conftest import recording_names, report

from threaddoc.collect.kernel import kernel_state
from threaddoc.findings import Confidence, Finding, Verdict
from threaddoc.pipeline import Report

DEADLOCK_KINDS = {"lock-order-deadlock", "self-deadlock", "join-deadlock"}


def _only_finding(name: str, kind: str) -> Finding:
    diagnosis = report(name)
    assert diagnosis.verdict is Verdict.DEADLOCK
    [finding] = diagnosis.findings
    assert finding.kind == kind
    return finding


@pytest.mark.parametrize("name", recording_names("bank_transfer_deadlock"))
def test_bank_transfer_locks_are_told_apart_by_their_account(name: str) -> None:
    finding = _only_finding(name, "lock-order-deadlock")
    assert {step.thread.name for step in finding.cycle} == {"alice-to-bob", "bob-to-alice"}
    labels = {step.resource.label for step in finding.cycle}
    assert len(labels) == 2 and all(label.startswith("Account@0x") and label.endswith("._lock")
                                    for label in labels)
    for step in finding.cycle:
        assert step.resource.name == "other._lock"
        assert step.held_as is not None and step.held_as.name == "self._lock"
        assert step.held_as.label == step.resource.label
        assert step.waits_at is not None and step.waits_at.code == "with other._lock:"
        assert step.taken_at is not None and step.taken_at.code == "with self._lock:"
    assert "sorted(" in finding.suggestions[0].example


@pytest.mark.parametrize("name", recording_names("dining_philosophers"))
def test_three_philosophers_form_one_ring(name: str) -> None:
    finding = _only_finding(name, "lock-order-deadlock")
    assert {step.thread.name for step in finding.cycle} == {"aristotle", "kant", "spinoza"}
    assert [step.resource.name for step in finding.cycle] == ["right"] * 3
    assert [step.held_as.name if step.held_as else None for step in finding.cycle] == ["left"] * 3
    assert len({step.resource.label for step in finding.cycle}) == 3
    assert [ref.name for ref, _ in finding.blocked] == ["MainThread"]
    breaker = finding.suggestions[0].summary
    assert f'"{finding.cycle[-1].thread.name}" breaks that order' in breaker


@pytest.mark.parametrize(
    ("sample", "thread"),
    [("helper_reacquires_lock", "config-reader"), ("callback_reenters_lock", "signup-worker")],
)
def test_a_lock_taken_again_deeper_in_the_stack_is_a_self_deadlock(sample: str, thread: str) -> None:
    for name in recording_names(sample):
        finding = _only_finding(name, "self-deadlock")
        [step] = finding.cycle
        assert step.thread.name == step.held_by.name == thread
        assert step.taken_at is not None and step.waits_at is not None
        # Taken in an outer frame, wanted again in an inner one (a helper, a callback).
        assert step.taken_at.function != step.waits_at.function
        assert step.resource.lock_type == "Lock"
        assert "RLock" in " ".join(s.summary for s in finding.suggestions)


@pytest.mark.parametrize("name", recording_names("rlock_pair_deadlock"))
def test_rlock_pair_is_a_lock_order_deadlock_and_reentry_is_not_one(name: str) -> None:
    finding = _only_finding(name, "lock-order-deadlock")
    assert len(finding.cycle) == 2
    assert {step.resource.lock_type for step in finding.cycle} == {"RLock"}


@pytest.mark.parametrize("name", recording_names("join_while_holding_lock"))
def test_joining_while_holding_the_lock_the_thread_needs(name: str) -> None:
    finding = _only_finding(name, "join-deadlock")
    assert {step.via for step in finding.cycle} == {"join", "lock"}
    assert "release `state_lock` before the join" in finding.suggestions[0].summary


@pytest.mark.parametrize("name", recording_names("threads_join_each_other"))
def test_threads_joining_each_other_is_a_confirmed_join_deadlock(name: str) -> None:
    finding = _only_finding(name, "join-deadlock")
    assert {step.via for step in finding.cycle} == {"join"}
    assert finding.confidence is Confidence.CONFIRMED
    assert len(finding.cycle) == 2


@pytest.mark.parametrize("name", recording_names("logging_handler_deadlock"))
def test_logging_handler_lock_closes_a_cycle_with_an_application_lock(name: str) -> None:
    finding = _only_finding(name, "lock-order-deadlock")
    libraries = {step.resource.library for step in finding.cycle}
    assert libraries == {None, "logging.Handler"}
    handler_lock = next(step.resource for step in finding.cycle if step.resource.library)
    assert handler_lock.lock_type == "RLock" and handler_lock.label.endswith(".lock")
    assert finding.suggestions[0].summary.startswith("logging.Handler holds")


@pytest.mark.parametrize(
    "name",
    recording_names("lock_contention_progress") + recording_names("rlock_reentered_by_owner")
    + recording_names("long_computation_holds_lock"),
)
def test_negatives_are_never_deadlocks(name: str) -> None:
    diagnosis = report(name)
    assert diagnosis.verdict is not Verdict.DEADLOCK
    assert not [finding for finding in diagnosis.findings if finding.kind in DEADLOCK_KINDS]


def _held_by(diagnosis: Report, waiter: str) -> list[str]:
    index = next(i for i, a in enumerate(diagnosis.analyses) if a.thread.name == waiter)
    return [diagnosis.analyses[edge.holder].thread.name for edge in diagnosis.graph.out_of(index)]


@pytest.mark.parametrize("name", recording_names("long_computation_holds_lock"))
def test_readers_are_blocked_behind_the_cruncher(name: str) -> None:
    diagnosis = report(name)
    assert _held_by(diagnosis, "reader-1") == ["cruncher"]
    assert _held_by(diagnosis, "reader-2") == ["cruncher"]
    # Those asleep in the kernel at the moment it was read sleep on the futex of the one
    # lock they wait for (a thread can be caught runnable for an instant).
    futexes = {a.thread.kernel.futex_address for a in diagnosis.analyses
               if a.thread.name.startswith("reader-") and a.thread.kernel is not None} - {None}
    assert len(futexes) == 1


@pytest.mark.parametrize("name", recording_names("rlock_reentered_by_owner"))
def test_rlock_waiter_is_blocked_behind_its_owner(name: str) -> None:
    diagnosis = report(name)
    assert _held_by(diagnosis, "lookup") == ["indexer"]


def test_kernel_state_reads_the_futex_address() -> None:
    raw = {"stat": "S", "syscall": "202 0x56436ea7c500 0x189 0x0 0x0 0x0 0xffffffff 0x7fe5 0x7fe6",
           "wchan": "futex_do_wait"}
    state = kernel_state(raw, "x86_64")
    assert state.syscall == "futex" and state.futex_address == 0x56436EA7C500
    assert kernel_state({"stat": "R", "syscall": "running"}, "x86_64").syscall is None
    assert kernel_state({"stat": "S", "syscall": "45 0x3 0x0"}, "x86_64").syscall == "recvfrom"
