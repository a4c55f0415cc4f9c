"""Several samples: stuck or moving, and for how long."""

from __future__ import annotations

import pytest

from threaddoc.classify import WaitKind, classify
from threaddoc.collect.kernel import kernel_state
from threaddoc.collect.sampling import busy_threads, progress_of, representative, stack_sample
from threaddoc.errors import PySpyFailed
from threaddoc.model import Frame, ProcessFacts, Progress, Snapshot, SourceFile, Thread
from threaddoc.render.text import duration

WAITING = [["/app/w.py", "work", 10], ["/usr/lib/python3.11/threading.py", "Thread.run", 982]]
MOVED = [["/app/w.py", "work", 11], ["/usr/lib/python3.11/threading.py", "Thread.run", 982]]


def _sample(at: float, stack: list[list[object]], cpu: float) -> dict[str, object]:
    # Stacks by Python thread id, CPU times by OS thread id: both 7 here.
    return {"time": at, "stacks": {"7": stack}, "cpu": {"7": cpu}}


def test_a_thread_at_the_same_place_with_no_cpu_is_stuck() -> None:
    progress = progress_of([_sample(0.0, WAITING, 1.0), _sample(0.5, WAITING, 1.0)], "7", "7")
    assert progress == Progress(samples=2, same_stack=True, cpu_seconds=0.0, window_seconds=0.5,
                                settled=True, gil_samples=0, innermost_lines=(10,))
    assert not progress.progressed


def test_a_thread_that_moved_made_progress() -> None:
    progress = progress_of([_sample(0.0, WAITING, 1.0), _sample(0.5, MOVED, 1.2)], "7", "7")
    assert progress is not None and progress.progressed
    assert progress.cpu_seconds is not None and abs(progress.cpu_seconds - 0.2) < 1e-9


def test_one_sample_says_nothing_about_progress() -> None:
    assert progress_of([_sample(0.0, WAITING, 1.0)], "7", "7") is None


def test_a_thread_that_moved_is_never_waiting() -> None:
    frame = Frame("work", "/app/w.py", 11, "w", False)
    thread = Thread("worker", 1, 7, False, False, (frame,),
                    progress=Progress(samples=3, same_stack=False, window_seconds=0.5, settled=False))
    state = classify(thread, Snapshot(ProcessFacts(pid=1), (thread,)))
    assert state.kind is WaitKind.RUNNING


def test_waiting_time_comes_from_the_scheduler_else_from_the_window() -> None:
    kernel = kernel_state({"stat": "S", "syscall": "202 0x1 0x189", "sched": "1000000.5",
                           "uptime": "8980.5"}, "x86_64")
    assert kernel.idle_seconds is not None and abs(kernel.idle_seconds - 7980.5) < 0.01
    frame = Frame("work", "/app/w.py", 10, "w", False)
    with_kernel = Thread("a", 1, 7, False, False, (frame,), kernel=kernel)
    assert with_kernel.waiting_for_seconds == kernel.idle_seconds
    sampled = Thread("b", 2, 8, False, False, (frame,),
                     progress=Progress(samples=3, same_stack=True, window_seconds=0.5))
    assert sampled.waiting_for_seconds == 0.5


def test_durations_read_like_a_goroutine_dump() -> None:
    assert duration(None) == ""
    assert duration(2.34) == "≥2.3s"
    assert duration(45) == "≥45s"
    assert duration(723) == "≥12m03s"
    assert duration(7980) == "≥2h13m"


def _entry(line: int) -> dict[str, object]:
    return {"thread_id": 7, "os_thread_id": 7, "thread_name": "poller",
            "frames": [{"filename": "/app/w.py", "name": "poll", "line": line}]}


def test_a_poller_is_shown_where_it_spends_its_time() -> None:
    # At its sleep (line 26) twice, caught at its work (line 25) once: it circles.
    dumps = [[_entry(26)], [_entry(25)], [_entry(26)]]
    [chosen] = representative(dumps)
    assert chosen["frames"] == [{"filename": "/app/w.py", "name": "poll", "line": 26}]
    history = [stack_sample(dump, {}) for dump in dumps]
    progress = progress_of(history, "7", "7")
    assert progress is not None and progress.settled and not progress.progressed


def test_a_thread_found_somewhere_new_each_time_progressed() -> None:
    dumps = [[_entry(10)], [_entry(11)], [_entry(12)]]
    assert representative(dumps)[0]["frames"][0]["line"] == 12  # type: ignore[index]
    progress = progress_of([stack_sample(dump, {}) for dump in dumps], "7", "7")
    assert progress is not None and progress.progressed


def test_non_blocking_samples_are_matched_by_python_thread_id() -> None:
    # A non-blocking dump of CPython < 3.11 has no OS thread id and calls every thread
    # active; the last, blocking dump is the one to believe for everything but the frames.
    unpaused = {"thread_id": 7, "os_thread_id": None, "active": True, "owns_gil": True,
                "thread_name": "poller", "frames": [{"filename": "/app/w.py", "name": "poll", "line": 26}]}
    paused = {**_entry(25), "active": False, "owns_gil": False}
    [chosen] = representative([[unpaused], [unpaused], [paused]])
    assert chosen["os_thread_id"] == 7 and chosen["active"] is False
    assert chosen["frames"] == unpaused["frames"]
    history = [stack_sample(dump, {"7": 1.0}) for dump in ([unpaused], [unpaused], [paused])]
    progress = progress_of(history, "7", "7")
    assert progress is not None and progress.gil_samples == 2 and not progress.held_gil_throughout


def test_a_waiter_that_used_the_cpu_got_what_it_waited_for() -> None:
    # Found at `with lock:` in every sample, but it ran meanwhile: it took the lock, worked,
    # and came back for it. Contention, not a deadlock.
    source = SourceFile("/app/w.py", "import threading\nlock = threading.Lock()\ndef work():\n"
                                     "    with lock:\n        pass\n")
    frame = Frame("work", "/app/w.py", 4, "w", False)
    busy = Progress(samples=3, same_stack=True, cpu_seconds=0.004, window_seconds=0.5)
    still = Progress(samples=3, same_stack=True, cpu_seconds=0.0, window_seconds=0.5)
    for progress, kind in ((busy, WaitKind.RUNNING), (still, WaitKind.LOCK)):
        thread = Thread("worker", 1, 7, False, False, (frame,), progress=progress)
        snapshot = Snapshot(ProcessFacts(pid=1), (thread,), sources={source.path: source})
        assert classify(thread, snapshot).kind is kind


def test_a_failed_unpaused_sample_is_done_without(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading a running process can fail mid-change; the blocking sample still makes a report.
    import threaddoc.collect as collect_module

    calls: list[bool] = []

    def fake_dump(pid: int, py_spy: str, timeout: float, *, blocking: bool = True,
                  native: bool = False, asleep: bool = True) -> list[dict[str, object]]:
        calls.append(blocking)
        if not blocking:
            raise PySpyFailed("py-spy failed: Failed to get stack traces")
        return [_entry(26)]

    monkeypatch.setattr(collect_module, "dump", fake_dump)
    monkeypatch.setattr(collect_module, "thread_times", lambda pid: ({}, {}))
    warnings: list[str] = []
    history, dumps, paused = collect_module._take_samples(1, "py-spy", 5.0, 3, 0.01, False, {}, warnings)
    assert calls == [False, False, False, False, True]  # each unpaused sample tried twice
    assert len(history) == len(dumps) == 1 and paused and not warnings


def test_a_busy_thread_keeps_the_paused_dumps_frames() -> None:
    # Twice at line 26 while it ran (non-blocking reads), line 25 when paused: a thread on
    # the CPU is shown as the paused dump saw it, never from a read that may be torn.
    dumps = [[_entry(26)], [_entry(26)], [_entry(25)]]
    history = [stack_sample(dump, {"7": at * 0.9}, at) for at, dump in enumerate(dumps)]
    assert busy_threads(history, dumps[-1]) == {7}
    assert representative(dumps, {7})[0]["frames"][0]["line"] == 25  # type: ignore[index]
    assert representative(dumps)[0]["frames"][0]["line"] == 26  # type: ignore[index]


def test_a_failed_paused_sample_is_taken_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A paused target can still be caught mid-change; the report needs the paused dump, so
    # it is taken again (a bounded number of times), never given up after one failure.
    import threaddoc.collect as collect_module

    outcomes: list[Exception | None] = [PySpyFailed("py-spy failed: Failed to get stack traces"), None]
    calls: list[bool] = []

    def fake_dump(pid: int, py_spy: str, timeout: float, *, blocking: bool = True,
                  native: bool = False, asleep: bool = True) -> list[dict[str, object]]:
        calls.append(blocking)
        failure = outcomes.pop(0)
        if failure is not None:
            raise failure
        return [_entry(26)]

    monkeypatch.setattr(collect_module, "dump", fake_dump)
    monkeypatch.setattr(collect_module, "thread_times", lambda pid: ({}, {}))
    _history, dumps, paused = collect_module._take_samples(1, "py-spy", 5.0, 1, 0.01, False, {}, [])
    assert calls == [True, True] and len(dumps) == 1 and paused


def test_a_paused_sample_that_keeps_failing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import threaddoc.collect as collect_module

    calls: list[bool] = []

    def fake_dump(pid: int, py_spy: str, timeout: float, *, blocking: bool = True,
                  native: bool = False, asleep: bool = True) -> list[dict[str, object]]:
        calls.append(blocking)
        raise PySpyFailed("py-spy failed: Failed to get stack traces")

    monkeypatch.setattr(collect_module, "dump", fake_dump)
    monkeypatch.setattr(collect_module, "thread_times", lambda pid: ({}, {}))
    with pytest.raises(PySpyFailed):
        collect_module._take_samples(1, "py-spy", 5.0, 1, 0.01, False, {}, [])
    assert calls == [True] * collect_module.BLOCKING_DUMP_ATTEMPTS


def test_frames_shared_between_dumps_are_one_stack_converted_once() -> None:
    # The memory reader hands the very same frames list for a thread that did not move.
    frames = [{"filename": "/app/w.py", "name": "poll", "line": 26}]
    dumps = [[{**_entry(26), "frames": frames}] for _ in range(3)]
    converted: dict[int, tuple[object, list[list[object]]]] = {}
    history = [stack_sample(dump, {}, at, converted=converted) for at, dump in enumerate(dumps)]
    assert history[0]["stacks"]["7"] is history[2]["stacks"]["7"]
    assert history[0]["stacks"]["7"] == [["/app/w.py", "poll", 26]]
    assert representative(dumps)[0] is dumps[-1][0]
    progress = progress_of(history, "7", "7")
    assert progress is not None and progress.same_stack and progress.settled
    assert progress.innermost_lines == (26,)


def test_on_a_tie_the_latest_stack_wins() -> None:
    # Each of two places seen twice: the one seen last is where the thread is shown.
    dumps = [[_entry(25)], [_entry(26)], [_entry(25)], [_entry(26)]]
    assert representative(dumps)[0]["frames"][0]["line"] == 26  # type: ignore[index]
    dumps = [[_entry(26)], [_entry(25)], [_entry(26)], [_entry(25)], [_entry(27)]]
    chosen = representative(dumps)[0]
    assert chosen["frames"][0]["line"] == 25 and chosen["thread_name"] == "poller"  # type: ignore[index]
    progress = progress_of([stack_sample(dump, {}) for dump in dumps], "7", "7")
    assert progress is not None and progress.settled and not progress.same_stack
