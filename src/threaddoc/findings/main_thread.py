"""What the main thread is doing, in plain words: the first thing an on-call engineer asks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc.classify import WaitKind
from threaddoc.resolve import ThreadAnalysis


@dataclass(frozen=True)
class MainThread:
    name: str
    os_thread_id: int | None
    doing: str


def main_thread(analyses: Sequence[ThreadAnalysis]) -> MainThread | None:
    main = next((a for a in analyses if a.thread.name == "MainThread"), None)
    if main is None:
        return None
    return MainThread(main.thread.name, main.thread.os_thread_id, _doing(main))


def _doing(main: ThreadAnalysis) -> str:
    wait, what = main.wait, main.waits_for
    name = what.name if what is not None else None
    if wait.kind is WaitKind.SHUTDOWN:
        if any(frame.method_name == "_python_exit" for frame in main.thread.frames):
            return "has finished the script and is waiting for thread-pool workers to exit"
        return "has finished the script and is waiting for non-daemon threads to exit"
    if wait.kind is WaitKind.EXECUTOR_SHUTDOWN:
        return "is shutting down an executor and waits for its workers to finish"
    if wait.kind is WaitKind.THREAD_JOIN:
        return f"is joining {name}" if name else "is joining a thread"
    if wait.kind is WaitKind.FUTURE_RESULT:
        return f"is waiting for the result of {name}" if name else "is waiting for a future's result"
    if wait.kind.is_lock:
        return f"is waiting for the lock {what.label or what.name}" if what else "is waiting for a lock"
    if wait.kind is WaitKind.RUNNING:
        return "is running"
    return wait.summary
