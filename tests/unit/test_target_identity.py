"""What collection refuses once it has begun, and how it says so: a target that exited, a
PID given to another process between samples, another debugger attached, an unsupported
CPython; and the one line a stop signal ends threaddoc with.

The live collection is driven with fakes (no process is touched): `dump` returns a canned
py-spy entry, and the target's start time (its identity) is scripted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import threaddoc.collect as collect_module
from threaddoc.collect import collect, process
from threaddoc.collect.guardian_process import open_runs_of
from threaddoc.errors import (
    EXIT_CANNOT_INSPECT,
    AlreadyTraced,
    Interrupted,
    PidReused,
    TargetError,
    TargetExited,
    UnsupportedPython,
)
from threaddoc.model import ProcessFacts

PID = 4242
ENTRY = {"thread_id": 1, "os_thread_id": PID, "thread_name": "MainThread", "active": False,
         "owns_gil": False, "frames": [{"name": "main", "filename": "/app/main.py", "line": 3,
                                        "locals": []}]}


class Target:
    """The scripted target: its start time as each identity check reads it, and its state."""

    def __init__(self, start_times: Iterator[int | None], state: str = "S") -> None:
        self.start_times = start_times
        self.state = state
        self.dumps = 0

    def start_ticks(self, pid: int) -> int | None:
        return next(self.start_times)

    def dump(self, pid: int, py_spy: str, timeout: float, **options: Any) -> list[dict[str, Any]]:
        self.dumps += 1
        return [dict(ENTRY)]


def _fake_live_target(monkeypatch: pytest.MonkeyPatch, target: Target) -> None:
    monkeypatch.setattr(collect_module, "find_py_spy", lambda explicit=None: "py-spy")
    monkeypatch.setattr(collect_module, "identity", lambda pid: 100)
    monkeypatch.setattr(collect_module, "process_facts", lambda pid: ProcessFacts(pid=pid))
    monkeypatch.setattr(collect_module, "refuse_if_traced", lambda pid: None)
    monkeypatch.setattr(collect_module, "read_undisturbed", lambda pid: {})
    monkeypatch.setattr(collect_module, "thread_times", lambda pid: ({}, {}))
    monkeypatch.setattr(collect_module, "dump", target.dump)
    monkeypatch.setattr(process, "start_ticks", target.start_ticks)
    monkeypatch.setattr(process, "process_state", lambda pid: target.state)
    monkeypatch.setattr(process, "tracer_of", lambda pid: None)


def test_a_pid_given_to_another_process_between_samples_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first sample is of the process the diagnosis began with (100); by the second the
    # PID names a process started later (250).
    target = Target(iter([100, 250, 250, 250]))
    _fake_live_target(monkeypatch, target)
    with pytest.raises(PidReused) as raised:
        collect(PID, samples=3, interval=0.0)
    assert target.dumps == 2, "the sample that read the other process must be the last one taken"
    line = raised.value.one_line()
    assert raised.value.exit_code == EXIT_CANNOT_INSPECT
    assert f"process {PID} exited during the diagnosis" in line
    assert f"PID {PID} now belongs to another process" in line
    assert "\n" not in line


def test_a_pid_reused_after_the_last_sample_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dumps are of the right process, but by the time its files are read, it is gone
    # and the PID is another's: nothing read since may be mixed into the report.
    target = Target(iter([100, 100, 250, 250]))
    _fake_live_target(monkeypatch, target)
    with pytest.raises(PidReused):
        collect(PID, samples=2, interval=0.0)


def test_a_target_that_exits_between_samples_is_reported_as_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target(iter([100, None, None]))
    _fake_live_target(monkeypatch, target)
    with pytest.raises(TargetExited) as raised:
        collect(PID, samples=3, interval=0.0)
    assert not isinstance(raised.value, PidReused)
    assert raised.value.one_line().startswith(f"threaddoc: process {PID} exited during the diagnosis — ")


def test_a_zombie_target_has_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target(iter([100, 100, 100]), state="Z")
    _fake_live_target(monkeypatch, target)
    with pytest.raises(TargetExited):
        collect(PID, samples=1)


def test_a_failed_read_is_explained_by_the_exit_that_caused_it(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target(iter([None, None]))
    _fake_live_target(monkeypatch, target)

    def failing_dump(pid: int, py_spy: str, timeout: float, **options: Any) -> list[dict[str, Any]]:
        raise TargetError("py-spy failed: Failed to find python version from target process")

    monkeypatch.setattr(collect_module, "dump", failing_dump)
    with pytest.raises(TargetExited):
        collect(PID, samples=1)


def test_a_failed_read_is_explained_by_a_debugger_that_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target(iter([100, 100]))
    _fake_live_target(monkeypatch, target)
    monkeypatch.setattr(process, "tracer_of", lambda pid: 777)
    monkeypatch.setattr(process, "_comm", lambda pid: "gdb")

    def failing_dump(pid: int, py_spy: str, timeout: float, **options: Any) -> list[dict[str, Any]]:
        raise TargetError("not allowed to inspect process 4242")

    monkeypatch.setattr(collect_module, "dump", failing_dump)
    with pytest.raises(AlreadyTraced) as raised:
        collect(PID, samples=1)
    assert "already traced by process 777 (gdb)" in raised.value.one_line()


def test_a_tracer_that_lets_go_in_a_moment_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    tracers = iter([555, 555, None])
    monkeypatch.setattr(process, "tracer_of", lambda pid: next(tracers))
    process.refuse_if_traced(PID)  # another threaddoc's py-spy, done after two looks


def test_a_tracer_that_stays_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "tracer_of", lambda pid: 777)
    monkeypatch.setattr(process, "_comm", lambda pid: "strace")
    monkeypatch.setattr(process, "TRACER_LET_GO_SECONDS", 0.05)
    with pytest.raises(AlreadyTraced) as raised:
        process.refuse_if_traced(PID)
    line = raised.value.one_line()
    assert "process 4242 is already traced by process 777 (strace)" in line
    assert "detach" in line and raised.value.exit_code == EXIT_CANNOT_INSPECT


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.7", "3.14"])
def test_an_unsupported_python_is_refused_by_name(version: str) -> None:
    with pytest.raises(UnsupportedPython) as raised:
        process.refuse_unsupported_python(PID, version)
    assert f"process {PID}: CPython {version} is not supported (3.8 to 3.13)" in raised.value.one_line()
    assert raised.value.exit_code == EXIT_CANNOT_INSPECT


@pytest.mark.parametrize("version", ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", None])
def test_a_supported_or_unknown_python_goes_on(version: str | None) -> None:
    process.refuse_unsupported_python(PID, version)


@pytest.mark.parametrize(("signum", "status", "words"), [
    (2, 130, "interrupted (SIGINT)"), (15, 143, "terminated (SIGTERM)"), (1, 129, "hung up (SIGHUP)"),
])
def test_a_stop_signal_ends_threaddoc_with_one_line_and_128_plus_n(signum: int, status: int,
                                                                     words: str) -> None:
    interrupted = Interrupted(signum)
    assert interrupted.exit_code == status
    assert interrupted.one_line() == (f"threaddoc: {words} before the diagnosis finished; "
                                      "the target was left as it was")
    assert not isinstance(interrupted, Exception), "an `except Exception` must not swallow it"


def test_the_guardian_cleans_up_after_the_runs_left_open() -> None:
    lines = ["watch 10 0 0", "done 10", "watch 11 1 0", "watch 12 1 1", "done 12", "watch 13 1 1",
             "garbage", "done 99"]
    assert open_runs_of(lines) == [(11, True, False), (13, True, True)]
