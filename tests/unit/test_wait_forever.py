"""Queues, events, I/O, subprocesses, imports, asyncio and fork, on recordings of the hung
samples (CPython 3.8-3.13); idle services stay no-hang."""

from __future__ import annotations

import pytest
from conftest import recording_names, report

from threaddoc.classify import WaitKind
from threaddoc.findings import Finding, Severity, Verdict


def _only(name: str, kind: str) -> Finding:
    findings = report(name).findings
    assert [f.kind for f in findings] == [kind], [f.title for f in findings]
    return findings[0]


def _threads(finding: Finding) -> set[str]:
    return {ref.name for ref in finding.threads}


@pytest.mark.parametrize(
    ("sample", "kind", "threads"),
    [
        ("consumer_outlives_producer", "queue-starvation", {"order-consumer", "MainThread"}),
        ("queue_join_missing_task_done", "queue-starvation", {"indexer", "MainThread"}),
        ("producer_blocked_on_full_queue", "queue-starvation", {"ingest", "MainThread"}),
        ("event_never_set", "unsignalled-wait", {"request-handler", "MainThread"}),
        ("condition_lost_wakeup", "unsignalled-wait", {"job-runner", "MainThread"}),
        ("lock_held_during_slow_request", "lock-held-during-io",
         {"cache-refresher", "request-1", "request-2"}),
        ("client_read_without_timeout", "blocking-io-no-timeout", {"MainThread"}),
        ("import_starts_thread", "import-lock-deadlock", {"MainThread", "plugin-loader"}),
        ("asyncio_handler_blocks_loop", "event-loop-blocked", {"event-loop"}),
        ("fork_while_lock_held-child", "fork-inherited-lock", {"MainThread"}),
    ],
)
def test_each_way_to_wait_forever_gets_its_kind(sample: str, kind: str, threads: set[str]) -> None:
    names = recording_names(sample + "-py")
    assert len(names) == 6
    for name in names:
        finding = _only(name, kind)
        assert finding.severity is Severity.CRITICAL
        assert threads <= _threads(finding)


@pytest.mark.parametrize("name", recording_names("queue_join_missing_task_done"))
def test_missing_task_done_is_named_with_its_fix(name: str) -> None:
    finding = _only(name, "queue-starvation")
    assert "task_done()" in finding.explanation
    assert any("task_done()" in s.example for s in finding.suggestions)


@pytest.mark.parametrize("name", recording_names("lock_held_during_slow_request"))
def test_lock_held_during_io_names_the_lock_and_the_peer(name: str) -> None:
    finding = _only(name, "lock-held-during-io")
    lock = next(r for r in finding.resources if r.kind == "lock")
    assert lock.name == "cache_lock" and lock.lock_type == "Lock"
    socket = next(r for r in finding.resources if r.kind == "socket")
    assert "127.0.0.1:" in socket.label
    assert "recvfrom()" in finding.title or "read()" in finding.title


@pytest.mark.parametrize("name", recording_names("client_read_without_timeout"))
def test_read_without_timeout_is_known_from_the_kernel(name: str) -> None:
    diagnosis = report(name)
    main = next(a for a in diagnosis.analyses if a.thread.name == "MainThread")
    assert main.wait.kind is WaitKind.SOCKET_RECV and main.wait.has_timeout is False
    finding = _only(name, "blocking-io-no-timeout")
    assert finding.resources[0].label.startswith("127.0.0.1:")


@pytest.mark.parametrize("name", recording_names("popen_wait_with_full_pipe"))
def test_popen_wait_names_the_child_blocked_writing(name: str) -> None:
    diagnosis = report(name)
    finding = _only(name, "subprocess-pipe-deadlock")
    [child] = [c for c in diagnosis.snapshot.child_processes if c.kernel and c.kernel.syscall == "write"]
    assert str(child.pid) in finding.title
    assert any("communicate()" in s.summary for s in finding.suggestions)


@pytest.mark.parametrize("name", recording_names("asyncio_handler_blocks_loop"))
def test_blocked_event_loop_names_the_coroutine(name: str) -> None:
    finding = _only(name, "event-loop-blocked")
    assert "fetch_profile" in finding.title
    assert any("to_thread" in s.summary for s in finding.suggestions)


@pytest.mark.parametrize("name", recording_names("fork_while_lock_held-child"))
def test_forked_child_waits_for_a_lock_held_in_the_parent(name: str) -> None:
    diagnosis = report(name)
    assert diagnosis.snapshot.process.looks_forked
    finding = _only(name, "fork-inherited-lock")
    assert str(diagnosis.snapshot.process.ppid) in finding.title
    assert finding.resources[0].name == "stats_lock"


@pytest.mark.parametrize("name", recording_names("fork_while_lock_held-py"))
def test_the_forking_parent_is_not_a_deadlock(name: str) -> None:
    assert report(name).verdict is not Verdict.DEADLOCK


@pytest.mark.parametrize("name", recording_names("idle_services"))
def test_idle_services_are_no_hang(name: str) -> None:
    diagnosis = report(name)
    assert diagnosis.verdict is Verdict.NO_HANG
    assert not [f for f in diagnosis.findings if f.severity is Severity.CRITICAL]
    idle = {a.wait.kind for a in diagnosis.analyses}
    assert idle & {WaitKind.SERVER_IDLE, WaitKind.SOCKET_ACCEPT, WaitKind.POOL_IDLE}
