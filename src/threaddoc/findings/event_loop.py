"""An asyncio event loop thread stuck inside a synchronous call: no other coroutine runs."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot, Thread
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import frame_evidence, thread_ref
from .io import blocked_io
from .model import Confidence, Finding, Severity


def detect_blocked_event_loops(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]) -> list[Finding]:
    findings = []
    for analysis in analyses:
        loop_frame = _loop_frame(analysis.thread)
        wait = analysis.wait
        if loop_frame is None or wait.site is None or wait.site >= loop_frame:
            continue
        if wait.activity is Activity.RUNNING or wait.kind is WaitKind.ASYNCIO_IDLE:
            continue
        coroutines = [frame for frame in analysis.thread.frames[wait.site:loop_frame] if not frame.is_stdlib]
        if not coroutines:
            continue
        innermost = coroutines[0]
        callers = " <- ".join(frame.function for frame in coroutines[1:])
        chain = f" (awaited by {callers})" if callers else ""
        io = blocked_io(analysis, snapshot)
        findings.append(Finding(
            kind="event-loop-blocked",
            severity=Severity.CRITICAL,
            confidence=Confidence.LIKELY,
            title=(f"the asyncio event loop in {analysis.thread.label} is blocked: coroutine "
                   f"{innermost.function} {io.text}"),
            explanation=(
                f"{analysis.thread.label} runs an asyncio event loop, and the coroutine "
                f"{innermost.function}{chain} made a synchronous blocking call: it {io.text}. "
                "While it blocks, the loop runs no other coroutine, callback or timer: every task "
                "of this loop is frozen."
            ),
            threads=(thread_ref(analysis, f"event loop, blocked in {innermost.function}"),),
            evidence=tuple(frame_evidence(frame, snapshot, note=f"coroutine {frame.function}")
                           for frame in coroutines[:3]),
            suggestions=fixes.event_loop_blocked(),
        ))
    return findings


def _loop_frame(thread: Thread) -> int | None:
    """Index of the event loop's `_run_once` frame, below the coroutines it runs."""
    for index, frame in enumerate(thread.frames):
        if frame.module == "asyncio.base_events" and frame.method_name == "_run_once":
            return index
    return None
