"""threaddoc's memory collector against py-spy, on ordinary hung samples, under every CPython.

For each sample the same process is read by `py-spy dump --json --locals` (which pauses
it for the moment of the read), then by `threaddoc.collect.memory.dump` (which reads
/proc/PID/mem), then by py-spy again. They must agree on the threads (thread ids, OS
thread ids, names once the memory collector reads them) and, for every thread that
stood still (both py-spy reads the same), on each frame's function, file and line and
on the locals' names, addresses and argument flags. `diagnose --collector memory` must
then find what the default does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.integration.conftest import real_py_spy
from threaddoc.collect.memory import StackCache, debug_layout, dump
from threaddoc.collect.memory.layouts import DERIVED_FROM, LAYOUTS
from threaddoc.collect.memory.memory import ProcessMemory
from threaddoc.collect.memory.symbols import find_interpreter

PY_SPY_TIMEOUT = 30.0
# A thread that keeps waking (a producer on a full queue) can be in the same place at both
# py-spy reads and elsewhere in between, with a new waiter lock: read again, a few times.
COMPARISON_ATTEMPTS = 3

COMPARED_SAMPLES = (
    "lock_order_deadlock.py",
    "nested_submit_starvation.py",
    "event_never_set.py",
    "busy_but_healthy.py",
    "queue_join_missing_task_done.py",
    "asyncio_handler_blocks_loop.py",
    "rlock_reentered_by_owner.py",
)
DIAGNOSED_SAMPLES = ("lock_order_deadlock.py", "nested_submit_starvation.py", "busy_but_healthy.py")

THREAD_KEYS = {"pid", "thread_id", "thread_name", "os_thread_id", "active", "owns_gil", "frames",
               "process_info"}
FRAME_KEYS = {"name", "filename", "module", "short_filename", "line", "locals", "is_entry", "is_shim_entry"}
LOCAL_KEYS = {"name", "addr", "arg", "repr"}


def py_spy_dump(pid: int) -> list[dict[str, Any]]:
    completed = subprocess.run([real_py_spy(), "dump", "--pid", str(pid), "--json", "--locals"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=PY_SPY_TIMEOUT, check=False)
    assert completed.returncode == 0, completed.stderr
    parsed: list[dict[str, Any]] = json.loads(completed.stdout)
    return parsed


def frame_view(frame: dict[str, Any]) -> tuple[str, str, int]:
    return frame["name"], frame["filename"], frame["line"]


def locals_view(frame: dict[str, Any]) -> list[tuple[str, int, bool]]:
    return [(local["name"], local["addr"], local["arg"]) for local in frame["locals"]]


def by_thread(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {entry["thread_id"]: entry for entry in entries}


def stack_view(thread: dict[str, Any]) -> list[tuple[tuple[str, str, int], list[tuple[str, int, bool]]]]:
    return [(frame_view(frame), locals_view(frame)) for frame in thread["frames"]]


def still_threads(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> set[int]:
    """The threads whose stack and locals were the same in both py-spy reads."""
    later = by_thread(after)
    return {thread["thread_id"] for thread in before
            if thread["thread_id"] in later and stack_view(thread) == stack_view(later[thread["thread_id"]])}


def differences(spy: list[dict[str, Any]], memory: list[dict[str, Any]], still: set[int]) -> list[str]:
    """What the memory collector says differently from py-spy, thread by thread."""
    problems: list[str] = []
    spy_threads, memory_threads = by_thread(spy), by_thread(memory)
    if set(spy_threads) != set(memory_threads):
        return [f"thread ids differ: py-spy {sorted(spy_threads)}, memory {sorted(memory_threads)}"]
    for thread_id, expected in spy_threads.items():
        got = memory_threads[thread_id]
        where = f"thread {thread_id} ({expected['thread_name']})"
        if got["os_thread_id"] != expected["os_thread_id"]:
            problems.append(f"{where}: os_thread_id {got['os_thread_id']} != {expected['os_thread_id']}")
        if got["thread_name"] is not None and got["thread_name"] != expected["thread_name"]:
            problems.append(f"{where}: thread_name {got['thread_name']!r} != {expected['thread_name']!r}")
        if thread_id not in still:
            continue  # a running thread's stack may differ between two reads
        expected_frames = [frame_view(frame) for frame in expected["frames"]]
        got_frames = [frame_view(frame) for frame in got["frames"]]
        if got_frames != expected_frames:
            problems.append(f"{where}: frames\n  memory {got_frames}\n  py-spy {expected_frames}")
            continue
        for expected_frame, got_frame in zip(expected["frames"], got["frames"]):
            if locals_view(got_frame) != locals_view(expected_frame):
                problems.append(f"{where} {expected_frame['name']}: locals\n  memory {locals_view(got_frame)}"
                                f"\n  py-spy {locals_view(expected_frame)}")
    return problems


def shape_problems(entries: list[dict[str, Any]]) -> list[str]:
    problems = []
    for entry in entries:
        if set(entry) != THREAD_KEYS:
            problems.append(f"thread keys {sorted(entry)}")
        for frame in entry["frames"]:
            if set(frame) != FRAME_KEYS:
                problems.append(f"frame keys {sorted(frame)}")
            problems.extend(f"local keys {sorted(local)}" for local in frame["locals"]
                            if set(local) != LOCAL_KEYS)
    return problems


@pytest.mark.parametrize("sample", COMPARED_SAMPLES)
def test_memory_dump_matches_py_spy(python_interpreter: Path, sample_runner: Callable[..., Any],
                                    sample: str) -> None:
    attempts: list[list[str]] = []
    with sample_runner(sample, python=python_interpreter) as process:
        for _ in range(COMPARISON_ATTEMPTS):
            spy = py_spy_dump(process.pid)
            memory = dump(process.pid, timeout=20.0)
            still = still_threads(spy, py_spy_dump(process.pid))
            assert not shape_problems(memory)
            assert still, "no thread of the sample stood still between the two py-spy reads"
            attempts.append(differences(spy, memory, still))
            if not attempts[-1]:
                break
    assert not attempts[-1], "\n".join(f"attempt {number}:\n" + "\n".join(problems)
                                       for number, problems in enumerate(attempts, 1))


@pytest.mark.parametrize("sample", COMPARED_SAMPLES[:1])
def test_memory_dump_repr_names_the_type_and_address(python_interpreter: Path,
                                                     sample_runner: Callable[..., Any], sample: str) -> None:
    """A local's repr is its identity, never its value."""
    with sample_runner(sample, python=python_interpreter) as process:
        memory = dump(process.pid, timeout=20.0)
    locals_ = [local for thread in memory for frame in thread["frames"] for local in frame["locals"]]
    assert locals_
    for local in locals_:
        assert local["repr"].endswith(f" at 0x{local['addr']:x}>"), local
    assert any(local["repr"] == f"<Thread at 0x{local['addr']:x}>" for local in locals_)


def test_a_thread_that_stood_still_is_not_decoded_again(python_interpreter: Path,
                                                       sample_runner: Callable[..., Any]) -> None:
    """Samples of one process share a StackCache: a thread whose bytes did not change gets
    the very frames of the sample before, on every interpreter (3.8-3.10 compare each frame
    object, 3.11+ the data stack), and they are what a fresh read finds. A sample before the
    last reads no names and calls no thread active."""
    with sample_runner("lock_order_deadlock.py", python=python_interpreter) as process:
        cache = StackCache()
        first = by_thread(dump(process.pid, timeout=20.0, cache=cache))
        again = by_thread(dump(process.pid, timeout=20.0, cache=cache, complete=False))
        fresh = by_thread(dump(process.pid, timeout=20.0))
    assert set(again) == set(first) == set(fresh)
    reused = {thread_id for thread_id, entry in again.items()
              if entry["frames"] is first[thread_id]["frames"]}
    assert len(reused) == len(first), "the deadlocked threads and the joining main thread stand still"
    assert all(again[thread_id]["frames"] == fresh[thread_id]["frames"] for thread_id in reused)
    assert all(entry["thread_name"] is None and entry["active"] is False for entry in again.values())
    assert any(entry["thread_name"] for entry in first.values())


def kinds(report: dict[str, Any]) -> list[str]:
    """The findings that say something is wrong (informational ones, cpu-bound and
    gil-contention, depend on how busy the machine was while sampling)."""
    return sorted(finding["kind"] for finding in report["findings"] if finding["severity"] != "info")


@pytest.mark.parametrize("sample", DIAGNOSED_SAMPLES)
def test_diagnose_with_memory_collector_finds_what_the_default_finds(
        python_interpreter: Path, sample_runner: Callable[..., Any], threaddoc: Callable[..., Any],
        sample: str) -> None:
    with sample_runner(sample, python=python_interpreter) as process:
        default = threaddoc(["diagnose", str(process.pid), "--json", "--samples", "2"])
        memory = threaddoc(["diagnose", str(process.pid), "--json", "--samples", "2",
                            "--collector", "memory"])
    assert default.returncode in (0, 1), default.describe()
    assert memory.returncode == default.returncode, memory.describe()
    default_report, memory_report = json.loads(default.stdout), json.loads(memory.stdout)
    assert kinds(memory_report) == kinds(default_report)
    assert same_verdict(memory_report["verdict"], default_report["verdict"]), (
        memory_report["verdict"], default_report["verdict"])


NOT_HUNG = frozenset({"no-hang", "busy"})


def same_verdict(memory: str, default: str) -> bool:
    """Whether a process not hung is `busy` or `no-hang` rests on the CPU it got while it was
    sampled, which two diagnoses a moment apart on a loaded machine can see differently (as for
    the info findings above); a hang or deadlock verdict must be the same."""
    return (memory in NOT_HUNG and default in NOT_HUNG) or memory == default


def test_debug_offsets_of_313_agree_with_the_derived_layout(interpreters: Any,
                                                             sample_runner: Callable[..., Any]) -> None:
    """3.13 publishes its offsets in _Py_DebugOffsets; for the patch release the table was
    derived from, every offset it publishes is the one the headers gave."""
    if "3.13" not in interpreters.found:
        pytest.skip("CPython 3.13 is not available")
    with sample_runner("event_never_set.py", python=interpreters.found["3.13"]) as process, \
            ProcessMemory(process.pid) as memory:
        interpreter = find_interpreter(process.pid)
        table = LAYOUTS[(3, 13)]
        published = debug_layout(memory, interpreter, table)
    assert interpreter.version_text == DERIVED_FROM["3.13"]
    compared = [field.name.removeprefix("debug_") for field in dataclasses.fields(table)
                if field.name.startswith("debug_") and hasattr(table, field.name.removeprefix("debug_"))]
    assert len(compared) > 20
    assert {name: getattr(published, name) for name in compared} == \
        {name: getattr(table, name) for name in compared}


NOBODY = 65534


def test_memory_collector_without_permission_is_one_line(threaddoc: Callable[..., Any],
                                                         threaddoc_env: Callable[..., dict[str, str]],
                                                         sample_runner: Callable[..., Any]) -> None:
    """User nobody may not read a root process's memory: the documented remedy, exit 3."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv: runs threaddoc as user nobody against a root-owned process")
    as_nobody = [setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    env = threaddoc_env({"HOME": "/nonexistent"})
    probe = subprocess.run([*as_nobody, sys.executable, "-c", "import threaddoc.collect.memory"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False, env=env)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot import threaddoc with {sys.executable}: {probe.stderr[-200:]!r}")
    with sample_runner("event_never_set.py") as process:
        run = threaddoc(["diagnose", str(process.pid), "--collector", "memory"], prefix=as_nobody, env=env)
    assert run.returncode == 3, run.describe()
    assert run.stdout == "", run.describe()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("threaddoc: not allowed"), run.describe()
    assert "ptrace_scope" in lines[0] and "Traceback" not in run.stderr


CHURNING_PROGRAM = """
import sys, threading, time
def short(n):
    if n:
        return short(n - 1)
    time.sleep(0.001)
def spawner():
    while True:
        threads = [threading.Thread(target=short, args=(i % 30,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
def spin():
    x = 0
    while True:
        x += 1
for _ in range(3):
    threading.Thread(target=spawner, daemon=True).start()
threading.Thread(target=spin, daemon=True).start()
print("ready", flush=True)
time.sleep(120)
"""
CHURN_DUMPS = 20


def test_memory_dump_of_a_target_whose_threads_come_and_go(python_interpreter: Path) -> None:
    """Threads exit while their states and frames are read: every dump still succeeds,
    lists the main thread with its OS thread id, and has only well-formed frames."""
    process = subprocess.Popen([str(python_interpreter), "-c", CHURNING_PROGRAM], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        dumps = [dump(process.pid, timeout=20.0) for _ in range(CHURN_DUMPS)]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    for entries in dumps:
        assert not shape_problems(entries)
        assert process.pid in {entry["os_thread_id"] for entry in entries}
        frames = [frame for entry in entries for frame in entry["frames"]]
        assert all(frame["filename"] and frame["line"] >= 0 for frame in frames), frames
    assert max(len(entries) for entries in dumps) > 5, "the threads did not come and go"
