"""Several samples a moment apart: one snapshot cannot tell a stuck thread from one that
happened to be waiting at that instant, nor a spinning thread from a slow one."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from threaddoc.model import Progress


def thread_cpu_times(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each thread."""
    try:
        return {str(thread.id): thread.user_time + thread.system_time
                for thread in psutil.Process(pid).threads()}
    except (psutil.Error, OSError):
        return {}


def stack_sample(raw: Sequence[Mapping[str, Any]], cpu: Mapping[str, float]) -> dict[str, Any]:
    """What one sample keeps: each thread's frames (file, function, line) and CPU time."""
    return {
        "time": time.monotonic(),
        "stacks": {
            str(thread.get("os_thread_id")): [
                [frame.get("filename"), frame.get("name"), frame.get("line")]
                for frame in thread.get("frames") or ()
            ]
            for thread in raw
        },
        "cpu": dict(cpu),
    }


def progress_of(history: Sequence[Mapping[str, Any]], thread_id: str) -> Progress | None:
    """Did the thread move between the samples? None with fewer than two samples."""
    if len(history) < 2:
        return None
    stacks = [sample.get("stacks", {}).get(thread_id) for sample in history]
    same = all(stack is not None and stack == stacks[-1] for stack in stacks)
    settled = _most_seen(stacks)[1] >= 2
    first, last = history[0].get("cpu", {}).get(thread_id), history[-1].get("cpu", {}).get(thread_id)
    cpu = last - first if first is not None and last is not None else None
    window = history[-1].get("time", 0.0) - history[0].get("time", 0.0)
    return Progress(samples=len(history), same_stack=same, cpu_seconds=cpu, window_seconds=window,
                    settled=settled)


def _signature(stack: Any) -> str:
    return repr(stack)


def _most_seen(stacks: Sequence[Any]) -> tuple[str | None, int]:
    counts: dict[str, int] = {}
    for stack in stacks:
        if stack is not None:
            counts[_signature(stack)] = counts.get(_signature(stack), 0) + 1
    if not counts:
        return None, 0
    best = max(counts.values())
    # On a tie, the latest stack wins.
    latest = next(_signature(s) for s in reversed(stacks) if s is not None and counts[_signature(s)] == best)
    return latest, best


def representative(dumps: Sequence[Sequence[Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    """One py-spy entry per thread of the last dump: from the latest sample that shows the
    thread where it was most often (a poller at its sleep, not on its way back to it)."""
    last = dumps[-1]
    chosen = []
    for entry in last:
        tid = entry.get("os_thread_id")
        candidates = [next((e for e in dump if e.get("os_thread_id") == tid), None) for dump in dumps]
        stacks = [stack_sample([c], {})["stacks"].get(str(tid)) if c is not None else None
                  for c in candidates]
        best, count = _most_seen(stacks)
        pick = entry
        if count >= 2:
            pick = next(c for c, s in zip(reversed(candidates), reversed(stacks))
                        if c is not None and _signature(s) == best)
        chosen.append(pick)
    return chosen
