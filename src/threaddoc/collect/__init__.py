"""Collection: the only stage that touches the target.

`collect(pid)` returns a `Recording` (py-spy's dump, psutil's facts, the
program's source files); everything after it is a pure function of that.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from threaddoc.errors import (
    MemoryCollectorUnsupported,
    NoSuchProcess,
    NotPython,
    PySpyFailed,
    PySpyTimedOut,
    TargetError,
    UsageError,
)

from .kernel import machine, read_children, read_kernel_states, read_open_files, read_undisturbed
from .parse import filenames, module_of, python_version_of
from .process import (
    child_pids,
    ensure_same_process,
    identity,
    process_facts,
    reading,
    refuse_if_traced,
    refuse_unsupported_python,
)
from .pyspy import dump, find_py_spy
from .recording import Recording, load_recording
from .sampling import StacksSeen, busy_threads, representative, stack_sample, thread_times
from .shown import values_apart
from .sources import files_to_read, read_sources
from .waiting import do_waiting_work

__all__ = ["COLLECTORS", "Recording", "collect", "load_recording"]

# Who reads the stacks: py-spy (pauses the target for a consistent picture), threaddoc's
# own memory reader (collect/memory: no limits on threads or depth, never pauses), or
# py-spy with the memory reader as fallback when py-spy refuses the process.
COLLECTORS = ("auto", "py-spy", "memory")
PY_SPY_MAX_THREADS = 4096  # py-spy refuses a process with more threads ("Max thread recursion depth")


MAX_POOL_CHILDREN = 8
MAX_CHILDREN = 32  # --children: Python descendants diagnosed with their parent

# A blocking dump of a process with a thread in uninterruptible sleep (D) waits for that
# thread to wake: give it this long, then read without stopping the target.
D_STATE_ATTACH_SECONDS = 3.0


def collect(pid: int, *, py_spy: str | None = None, timeout: float = 20.0, samples: int = 1,
            interval: float = 0.25, native: bool = False, with_pool_children: bool = True,
            all_children: bool = False, show_locals: bool = False, collector: str = "auto") -> Recording:
    if collector not in COLLECTORS:
        raise UsageError(f"unknown collector {collector!r}", f"use one of {', '.join(COLLECTORS)}")
    executable = find_py_spy(py_spy) if collector != "memory" else ""
    started = identity(pid)  # the process this diagnosis is about, whatever its PID names later
    facts = process_facts(pid)
    chosen, warnings = collector, []
    if collector == "auto" and _past_py_spy(facts.num_threads):
        chosen = "memory"  # py-spy would refuse it: no need to look for a tracer that would stop py-spy
        warnings.append(_fallback_warning(f"it has {facts.num_threads:,} threads, more than the "
                                          f"{PY_SPY_MAX_THREADS:,} py-spy reads"))
    kernel: dict[str, dict[str, str]] = {}
    if chosen != "memory":  # the memory reader does not attach: another tracer does not matter
        refuse_if_traced(pid)
        # py-spy's ptrace stop wakes every thread: the kernel's view of them is read before it.
        # The memory reader disturbs nothing: it reads them while it waits between its samples.
        kernel = read_undisturbed(pid)
    sampling = _Sampling(pid, executable, timeout, samples, interval, native, kernel, warnings, started,
                         facts.python_version, kernel_pending=chosen == "memory")
    history, dumps, paused = _collected_samples(sampling, chosen, facts.num_threads)
    # Values never leave collection: the analysis needs identities only. Asked to show them,
    # keep them redacted beside the recording (in memory, never saved).
    raw, shown = values_apart(representative(dumps, busy_threads(history, dumps[-1])), show_locals)
    # Threads started since: read them now.
    kernel.update(read_kernel_states(pid, [tid for tid in _thread_ids(raw) if str(tid) not in kernel]))
    files = read_open_files(pid)
    child_facts = read_children(pid)
    sources, source_warnings = read_sources(pid, files_to_read(raw), facts.create_time)
    warnings.extend(source_warnings)
    ensure_same_process(pid, started)  # what was read since the dumps is of the same process
    if facts.python_version is None:
        facts = dataclasses.replace(facts, python_version=python_version_of(raw))
        refuse_unsupported_python(pid, facts.python_version)
    children: tuple[Recording, ...] = ()
    if all_children:
        children = _collect_children(child_pids(pid, recursive=True), MAX_CHILDREN, executable, timeout,
                                     samples, interval, native, warnings, show_locals=show_locals,
                                     collector=collector)
    elif with_pool_children and _uses_process_pool(raw):
        children = _collect_children(child_pids(pid), MAX_POOL_CHILDREN, executable, timeout, samples,
                                     interval, native, warnings, show_locals=show_locals,
                                     collector=collector)
    return Recording(process=facts, pyspy=tuple(raw), sources=sources, warnings=tuple(warnings),
                     kernel=kernel, arch=machine(), children=children, open_files=files,
                     child_processes=tuple(child_facts),
                     history=tuple(history) if samples > 1 else (),
                     native=native and paused, shown=shown)


@dataclasses.dataclass(frozen=True)
class _Sampling:
    """How the samples of one process are taken."""

    pid: int
    py_spy: str
    timeout: float
    samples: int
    interval: float
    native: bool
    kernel: dict[str, dict[str, str]]
    warnings: list[str]
    started: int | None
    python_version: str | None
    kernel_pending: bool = False  # `kernel` is still to be read, by the memory reader's samples


def _collected_samples(sampling: _Sampling, collector: str, threads: int | None,
                       ) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], bool]:
    """The samples, read by py-spy or by the memory reader. `auto` uses py-spy, unless the
    process has more threads than py-spy reads, and falls back to the memory reader when
    py-spy refuses the process (a stack deeper than 4,096 frames): the report says so."""
    if collector == "memory":
        return _memory_samples(sampling)
    if collector == "auto" and _past_py_spy(threads):
        history, dumps = _memory_fallback(sampling, f"it has {threads:,} threads, more than the "
                                                    f"{PY_SPY_MAX_THREADS:,} py-spy reads")
        return history, dumps, False
    s = sampling
    try:
        return _take_samples(s.pid, s.py_spy, s.timeout, s.samples, s.interval, s.native, s.kernel,
                             s.warnings, started=s.started)
    except NotPython as refusal:
        if collector != "auto":
            raise
        try:
            history, dumps = _memory_fallback(sampling, "py-spy refused it, as it does a thread deeper "
                                                        "than 4,096 frames")
        except MemoryCollectorUnsupported as unsupported:
            raise MemoryCollectorUnsupported(f"{refusal.message}, and {unsupported.message}",
                                             unsupported.remedy) from None
        except NotPython:
            raise refusal from None
        return history, dumps, False


_Samples = tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]


def _memory_fallback(sampling: _Sampling, why: str) -> _Samples:
    history, dumps, _ = _memory_samples(sampling)
    sampling.warnings.append(_fallback_warning(why))
    return history, dumps


def _past_py_spy(threads: int | None) -> bool:
    return threads is not None and threads > PY_SPY_MAX_THREADS


def _fallback_warning(why: str) -> str:
    return (f"py-spy could not read this process ({why}): its stacks were read from its memory by "
            "threaddoc's own collector, without pausing it, so a running thread's stack may be inconsistent")


def _memory_samples(s: _Sampling) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], bool]:
    """`samples` reads of the target's memory, `interval` apart; none pauses the target."""
    from .memory import StackCache
    from .memory import dump as memory_dump

    cache = StackCache()  # a thread that did not move between samples is not decoded again
    converted: StacksSeen = {}  # nor is its stack converted again for the history
    history: list[dict[str, Any]] = []
    dumps: list[list[dict[str, Any]]] = []
    for index in range(s.samples):
        at, (cpu, queued) = time.monotonic(), _thread_times(s.pid, s.samples)
        with reading(s.pid, s.started):
            # Names and run states are the last sample's (see representative): only it reads them.
            entries = memory_dump(s.pid, timeout=s.timeout, python_version=s.python_version, cache=cache,
                                  complete=index == s.samples - 1)
        dumps.append(entries)
        history.append(stack_sample(entries, cpu, at, queued, converted))
        _between_memory_samples(s, index)
    if s.native:
        s.warnings.append("native frames are read by py-spy only (`--collector py-spy`): they are missing")
    return history, dumps, False


def _thread_times(pid: int, samples: int) -> tuple[dict[str, float], dict[str, float]]:
    """CPU times before a sample; one sample alone shows no progress (progress_of, busy_threads),
    so none are read for it: a file a thread, before py-spy attaches."""
    return thread_times(pid) if samples > 1 else ({}, {})


def _between_memory_samples(s: _Sampling, index: int) -> None:
    """The interval after sample `index`. Reading the kernel's view of every thread (four
    /proc files a thread: a third of a second at 10,000 threads) is done within the first
    one rather than before the samples: the memory reader leaves the threads undisturbed."""
    resume = time.monotonic() + s.interval
    if s.kernel_pending and index == 0:
        s.kernel.update(read_undisturbed(s.pid))
    do_waiting_work()
    if index < s.samples - 1:
        time.sleep(max(0.0, resume - time.monotonic()))


def _take_samples(
    pid: int, py_spy: str, timeout: float, samples: int, interval: float, native: bool,
    kernel: Mapping[str, Mapping[str, str]], warnings: list[str], *, started: int | None = None,
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], bool]:
    """`samples` dumps `interval` apart. Only the last one pauses the target (ptrace), so
    however many samples are taken, the target is stopped for one dump's time; the
    others are read while it runs. CPU times are read just before each dump. Also says
    whether the last dump could pause the target. Each sample must be of the process
    the diagnosis began with (`started`: its identity)."""
    history: list[dict[str, Any]] = []
    dumps: list[list[dict[str, Any]]] = []
    paused = False
    for index in range(samples):
        if index:
            time.sleep(interval)
        at, (cpu, queued) = time.monotonic(), _thread_times(pid, samples)
        with reading(pid, started):
            if index < samples - 1:
                entries = _unpaused_dump(pid, py_spy, timeout)
            else:
                entries, paused = _blocking_dump(pid, py_spy, timeout, native, kernel, warnings)
        if entries is None:
            continue
        dumps.append(entries)
        history.append(stack_sample(entries, cpu, at, queued))
    return history, dumps, paused


def _unpaused_dump(pid: int, py_spy: str, timeout: float) -> list[dict[str, Any]] | None:
    """A non-blocking sample. Reading a running process can catch its memory mid-change
    ("Failed to get stack traces", even "Failed to find a python interpreter"): try again
    once, then do without this sample; the last, blocking one is what the report is built
    from, and says what is really wrong if something is."""
    for _ in range(2):
        try:
            return dump(pid, py_spy, timeout, blocking=False)
        except PySpyTimedOut:
            return None
        except (PySpyFailed, NotPython):
            continue
    return None


def _blocking_dump(
    pid: int, py_spy: str, timeout: float, native: bool,
    kernel: Mapping[str, Mapping[str, str]], warnings: list[str],
) -> tuple[list[dict[str, Any]], bool]:
    """A consistent picture, or, when the target cannot be paused in time (a thread in
    uninterruptible sleep), a non-blocking read that says so."""
    sleepers = sorted(tid for tid, entry in kernel.items() if entry.get("stat") == "D")
    attach_timeout = min(timeout, D_STATE_ATTACH_SECONDS) if sleepers else timeout
    try:
        return _paused_dump(pid, py_spy, attach_timeout, native, asleep=bool(sleepers) or not kernel), True
    except PySpyTimedOut:  # dump() has cancelled the stop its attach left pending
        who = f"thread {', '.join(sleepers)} is in uninterruptible sleep (D)" if sleepers else \
            "it did not respond"
        warnings.append(
            f"the target could not be paused within {attach_timeout:g}s ({who}): stacks were read "
            "without stopping it (non-blocking), so a running thread's stack may be inconsistent"
            + ("; native frames need a pause and are missing" if native else ""))
        return dump(pid, py_spy, timeout, blocking=False), False


BLOCKING_DUMP_ATTEMPTS = 3


def _paused_dump(pid: int, py_spy: str, timeout: float, native: bool, *, asleep: bool = True,
                 ) -> list[dict[str, Any]]:
    """Even a paused target can be caught between two consistent states (a frame half
    pushed when the stop arrived): py-spy then says "Failed to get stack traces". That is
    a moment, not a state: pause it again, a few times at most; each failed try paused the
    target only for as long as the read took."""
    for attempt in range(1, BLOCKING_DUMP_ATTEMPTS):
        try:
            return dump(pid, py_spy, timeout, native=native, asleep=asleep)
        except PySpyTimedOut:
            raise
        except PySpyFailed:
            time.sleep(0.05 * attempt)
    return dump(pid, py_spy, timeout, native=native, asleep=asleep)


# Modules whose frames mean the process runs (or waits on) worker processes of its own.
_PROCESS_POOL_MODULES = frozenset({"concurrent.futures.process", "multiprocessing.pool",
                                   "multiprocessing.popen_fork", "multiprocessing.popen_forkserver",
                                   "multiprocessing.popen_spawn_posix"})


def _uses_process_pool(raw: Sequence[Mapping[str, Any]]) -> bool:
    """A process pool or a multiprocessing.Process is in use: its workers are our children,
    diagnosed with us so that a wait on them can be linked to the one that is stuck."""
    return any(module_of(filename)[0] in _PROCESS_POOL_MODULES for filename in filenames(raw))


def _collect_children(
    pids: Sequence[int], limit: int, py_spy: str, timeout: float, samples: int, interval: float,
    native: bool, warnings: list[str], *, show_locals: bool = False, collector: str = "auto",
) -> tuple[Recording, ...]:
    """Child processes, so that a parent waiting on a result can be linked to the child
    that will not produce it. Children that are not Python (a shell, a compiler) are left
    out; one that cannot be read is skipped with a warning."""
    recordings: list[Recording] = []
    for child in pids:
        if len(recordings) == limit:
            warnings.append(f"only the first {limit} Python child processes were diagnosed")
            break
        try:
            recordings.append(collect(child, py_spy=py_spy, timeout=timeout, samples=samples,
                                      interval=interval, native=native, with_pool_children=False,
                                      show_locals=show_locals, collector=collector))
        except (NotPython, NoSuchProcess):
            continue
        except TargetError as error:
            warnings.append(f"child process {child} could not be inspected: {error.message}")
    return tuple(recordings)


def _thread_ids(raw: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(thread["os_thread_id"]) for thread in raw if isinstance(thread.get("os_thread_id"), int)]
