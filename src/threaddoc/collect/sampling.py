"""Several samples a moment apart: one snapshot cannot tell a stuck thread from one that
happened to be waiting at that instant, nor a spinning thread from a slow one."""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import psutil

from threaddoc.model import Progress

from .kernel import read_proc_text
from .parse import python_frames


def thread_times(pid: int) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds used so far by each thread, and seconds it spent runnable but waiting
    for a CPU (a spinning thread on a loaded machine gets little CPU, but wants it all).

    The scheduler's own count (/proc/PID/task/TID/schedstat, in nanoseconds) sees the
    few milliseconds a slow worker spends between two waits; psutil's clock ticks (10 ms)
    would round them away. psutil (CPU only) is the fallback where schedstat is missing."""
    cpu, queued = _schedstat_times(pid)
    if cpu:
        return cpu, queued
    try:
        return {str(thread.id): thread.user_time + thread.system_time
                for thread in psutil.Process(pid).threads()}, {}
    except (psutil.Error, OSError):
        return {}, {}


def _schedstat_times(pid: int) -> tuple[dict[str, float], dict[str, float]]:
    cpu, queued = {}, {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        tasks = os.open(f"/proc/{pid}/task", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return {}, {}
    try:
        for tid in tids:
            try:
                fields = read_proc_text(f"{tid}/schedstat", tasks).split()
                cpu[tid], queued[tid] = int(fields[0]) / 1e9, int(fields[1]) / 1e9
            except (OSError, ValueError, IndexError):
                continue
    finally:
        os.close(tasks)
    return cpu, queued


# Frames lists already converted, by identity; each holds its list so that the id stays its own.
StacksSeen = dict[int, tuple[Any, list[list[Any]]]]


def stack_sample(raw: Sequence[Mapping[str, Any]], cpu: Mapping[str, float],
                 at: float | None = None, queued: Mapping[str, float] | None = None,
                 converted: StacksSeen | None = None) -> dict[str, Any]:
    """What one sample keeps: each thread's Python frames (file, function, line) and which
    thread held the GIL, by Python thread id (a non-blocking dump of CPython < 3.11 has no
    OS thread ids), and CPU times (read at `at`) by OS thread id. Samples of one process
    may share `converted`: a frames list seen before (the memory reader hands the same list
    for a thread that did not move) gives the same stack, converted once."""
    return {
        "time": time.monotonic() if at is None else at,
        "stacks": {str(thread.get("thread_id")): _stack_of(thread, converted) for thread in raw},
        "cpu": dict(cpu),
        "queued": dict(queued or {}),
        "gil": next((str(thread.get("thread_id")) for thread in raw if thread.get("owns_gil")), None),
    }


def _stack_of(thread: Mapping[str, Any], converted: StacksSeen | None) -> list[list[Any]]:
    frames = thread.get("frames")
    if converted is None:
        return _frames_of(thread)
    seen = converted.get(id(frames))
    if seen is not None and seen[0] is frames:
        return seen[1]
    stack = _frames_of(thread)
    converted[id(frames)] = (frames, stack)
    return stack


def _frames_of(thread: Mapping[str, Any]) -> list[list[Any]]:
    return [[frame.get("filename"), frame.get("name"), frame.get("line")] for frame in python_frames(thread)]


def progress_of(history: Sequence[Mapping[str, Any]], thread_id: str, os_thread_id: str) -> Progress | None:
    """Did the thread move between the samples? None with fewer than two samples."""
    if len(history) < 2:
        return None
    # Recordings made before samples were keyed by Python thread id used OS thread ids.
    key = thread_id if any(thread_id in sample.get("stacks", {}) for sample in history) else os_thread_id
    stacks = [sample.get("stacks", {}).get(key) for sample in history]
    same = all(stack is not None and stack == stacks[-1] for stack in stacks)
    settled = same or _most_seen(stacks)[1] >= 2  # two samples at least, all at one place
    cpu = _growth(history, "cpu", os_thread_id)
    queued = _growth(history, "queued", os_thread_id)
    window = history[-1].get("time", 0.0) - history[0].get("time", 0.0)
    gil = sum(1 for sample in history if sample.get("gil") == key)
    lines = _innermost_line(stacks[-1]) if same else _innermost_lines(stacks)
    return Progress(samples=len(history), same_stack=same, cpu_seconds=cpu, window_seconds=window,
                    settled=settled, gil_samples=gil, innermost_lines=lines, queued_seconds=queued)


def _growth(history: Sequence[Mapping[str, Any]], counter: str, thread_id: str) -> float | None:
    first, last = history[0].get(counter, {}).get(thread_id), history[-1].get(counter, {}).get(thread_id)
    return last - first if first is not None and last is not None else None


def _innermost_lines(stacks: Sequence[Any]) -> tuple[int, ...]:
    """The lines the innermost frame was at, when nothing but that line changed."""
    if not stacks or any(not stack for stack in stacks):
        return ()
    outer = [(stack[0][:2], stack[1:]) for stack in stacks]
    if any(frames != outer[0] for frames in outer):
        return ()
    return tuple(sorted({int(stack[0][2] or 0) for stack in stacks}))


def _innermost_line(stack: Any) -> tuple[int, ...]:
    """`_innermost_lines` of samples that all saw this one stack."""
    return (int(stack[0][2] or 0),) if stack else ()


def _signature(stack: Any) -> str:
    return repr(stack)


def _most_seen(stacks: Sequence[Any]) -> tuple[int | None, int]:
    """Where in `stacks` the latest of those seen most often is, and how often it was seen
    (None, 0 if none was seen). On a tie, the latest stack wins."""
    seen = [index for index, stack in enumerate(stacks) if stack is not None]
    if not seen:
        return None, 0
    latest = stacks[seen[-1]]
    if all(stacks[index] == latest for index in seen):  # a thread that did not move: most of them
        return seen[-1], len(seen)
    signatures = {index: _signature(stacks[index]) for index in seen}
    counts: dict[str, int] = {}
    for signature in signatures.values():
        counts[signature] = counts.get(signature, 0) + 1
    best = max(counts.values())
    return next(index for index in reversed(seen) if counts[signatures[index]] == best), best


def busy_threads(history: Sequence[Mapping[str, Any]], last: Sequence[Mapping[str, Any]]) -> set[Any]:
    """Python thread ids of the threads on a CPU at least half the window."""
    if len(history) < 2:
        return set()
    window = history[-1].get("time", 0.0) - history[0].get("time", 0.0)
    busy = set()
    for entry in last:
        used = _growth(history, "cpu", str(entry.get("os_thread_id")))
        if window > 0 and used is not None and used / window >= 0.5:
            busy.add(entry.get("thread_id"))
    return busy


def representative(dumps: Sequence[Sequence[Mapping[str, Any]]],
                   busy: Collection[Any] = ()) -> list[Mapping[str, Any]]:
    """One py-spy entry per thread of the last dump, with the frames of the latest sample
    that shows the thread where it was most often (a poller at its sleep, not on its way
    back to it). Everything else comes from the last dump, the one that paused the target:
    a non-blocking dump calls every thread active. A `busy` thread keeps the paused dump's
    frames: read while it ran, its stack may be torn."""
    last = dumps[-1]
    if len(dumps) == 1:
        return list(last)
    # By thread id, once per dump: a scan per thread was quadratic at thousands of threads.
    indexed = [{e.get("thread_id"): e for e in dump} for dump in dumps]
    chosen = []
    for entry in last:
        key = entry.get("thread_id")
        candidates = [by_id.get(key) for by_id in indexed]
        frames = entry.get("frames")
        if key in busy or all(c is not None and c.get("frames") is frames for c in candidates):
            chosen.append(entry)  # busy, or the very same frames in every dump (the memory reader's)
            continue
        stacks = [_frames_of(c) if c is not None else None for c in candidates]
        best, count = _most_seen(stacks)
        pick = candidates[best] if count >= 2 and best is not None else entry
        chosen.append(entry if pick is entry or pick is None else {**entry, "frames": pick.get("frames")})
    return chosen
