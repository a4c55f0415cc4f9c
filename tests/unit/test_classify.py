"""Classification on recordings: every wait state, on every CPython 3.8-3.13.

tests/recordings/waits/ holds one recording per program of tests/wait_programs/
and interpreter; in each, the thread named `waiter` is in the state the program
is named after.
"""

from __future__ import annotations

import dataclasses

import pytest
from conftest import RECORDINGS, load_recording

from threaddoc.classify import Activity, WaitKind, classify_all
from threaddoc.model import Frame, Local, ProcessFacts, Snapshot, SourceFile, Thread
from threaddoc.pipeline import analyse

EXPECTED = {
    "asyncio_idle": WaitKind.ASYNCIO_IDLE,
    "barrier_wait": WaitKind.BARRIER,
    "condition_wait": WaitKind.CONDITION_WAIT,
    "cpu_busy": WaitKind.RUNNING,
    "event_wait": WaitKind.EVENT_WAIT,
    "file_read": WaitKind.FILE_READ,
    "future_result": WaitKind.FUTURE_RESULT,
    "futures_as_completed": WaitKind.FUTURES_WAIT,
    "futures_wait": WaitKind.FUTURES_WAIT,
    "lock_acquire": WaitKind.LOCK,
    "lock_acquire_call": WaitKind.LOCK,
    "poll": WaitKind.SELECT,
    "pool_idle_worker": WaitKind.POOL_IDLE,
    "queue_get": WaitKind.QUEUE_GET,
    "queue_join": WaitKind.QUEUE_JOIN,
    "queue_put": WaitKind.QUEUE_PUT,
    "rlock_acquire": WaitKind.LOCK,  # refined to RLOCK by resolve, from the lock's type
    "select_": WaitKind.SELECT,
    "selectors_": WaitKind.SELECT,
    "semaphore_acquire": WaitKind.SEMAPHORE,
    "server_idle": WaitKind.SERVER_IDLE,
    "simplequeue_get": WaitKind.QUEUE_GET,
    "sleep": WaitKind.SLEEP,
    "socket_accept": WaitKind.SOCKET_ACCEPT,
    "socket_connect": WaitKind.SOCKET_CONNECT,
    "socket_recv": WaitKind.SOCKET_RECV,
    "socket_send": WaitKind.SOCKET_SEND,
    "stdin_read": WaitKind.FILE_READ,
    "subprocess_communicate": WaitKind.SUBPROCESS_COMMUNICATE,
    "subprocess_wait": WaitKind.SUBPROCESS_WAIT,
    "thread_join": WaitKind.THREAD_JOIN,
}

WAIT_RECORDINGS = sorted(path.stem for path in (RECORDINGS / "waits").glob("*.json"))


def _waits(name: str) -> Snapshot:
    path = RECORDINGS / "waits" / f"{name}.json"
    return load_recording(path.read_text(encoding="utf-8")).to_snapshot()


def test_every_wait_program_is_recorded_on_six_interpreters() -> None:
    programs = {name.rsplit("-py", 1)[0] for name in WAIT_RECORDINGS}
    assert programs == set(EXPECTED)
    assert len(WAIT_RECORDINGS) == 6 * len(EXPECTED)


@pytest.mark.parametrize("name", WAIT_RECORDINGS)
def test_waiter_is_classified_by_its_wait(name: str) -> None:
    snapshot = _waits(name)
    waits = dict(zip((thread.name for thread in snapshot.threads), classify_all(snapshot)))
    assert waits["waiter"].kind is EXPECTED[name.rsplit("-py", 1)[0]]


@pytest.mark.parametrize("name", WAIT_RECORDINGS)
def test_waits_without_timeout_are_not_reported_as_timed(name: str) -> None:
    # Every wait program waits without a timeout (sleep aside, which always has one).
    snapshot = _waits(name)
    waits = dict(zip((thread.name for thread in snapshot.threads), classify_all(snapshot)))
    if waits["waiter"].kind is WaitKind.SLEEP:
        assert waits["waiter"].has_timeout is True
    else:
        assert waits["waiter"].has_timeout in (None, False)


def test_blocking_kinds_are_blocked_and_idle_kinds_idle() -> None:
    assert WaitKind.LOCK.activity is Activity.BLOCKED
    assert WaitKind.FUTURE_RESULT.activity is Activity.BLOCKED
    assert WaitKind.SERVER_IDLE.activity is Activity.IDLE
    assert WaitKind.POOL_IDLE.activity is Activity.IDLE
    assert WaitKind.RUNNING.activity is Activity.RUNNING


def test_without_source_a_thread_is_not_guessed_to_be_running() -> None:
    snapshot = _waits("lock_acquire-py3.11")
    blind = dataclasses.replace(snapshot, sources={})
    waits = dict(zip((thread.name for thread in blind.threads), classify_all(blind)))
    assert waits["waiter"].kind is WaitKind.IDLE_OTHER
    assert "source" in waits["waiter"].summary


def test_entering_a_condition_waits_for_its_lock() -> None:
    source = SourceFile("/app/jobs.py", "import threading\ncond = threading.Condition()\n\n"
                        "def b():\n    with cond:\n        pass\n")
    enter = Frame("Condition.__enter__", "/usr/lib/python3.11/threading.py", 247, "threading", True,
                  (Local("self", 0x10, "Condition", True),))
    own = Frame("b", "/app/jobs.py", 5, "jobs", False)
    thread = Thread("B", 1, 11, False, False, (enter, own))
    snapshot = Snapshot(ProcessFacts(pid=1), (thread,), sources={source.path: source})
    [analysis] = analyse(snapshot).analyses
    assert analysis.wait.kind is WaitKind.LOCK
    assert analysis.waits_for is not None
    assert analysis.waits_for.key == ("global", "jobs", "cond")
    assert analysis.waits_for.lock_type == "Condition"
