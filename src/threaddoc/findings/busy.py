"""Busy, not hung: threads on the CPU, threads taking turns on the GIL, and a call into C
that keeps the GIL while every other thread waits for it.

All of it needs several samples (the CPU time a thread used between them) or native
frames (a thread waiting for the GIL); from one plain sample nothing here is said.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from threaddoc import sourcecode
from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import frame_evidence, labels, some_threads, thread_ref, wait_evidence
from .model import Confidence, Evidence, Finding, Severity, ThreadRef

BUSY_KINDS = frozenset({"cpu-bound", "gil-contention"})

CPU_BOUND_SHARE = 0.5  # on a CPU at least half of the window
CONTENDING_SHARE = 0.05  # got some of the GIL: it wants it
# Threads that take turns on the GIL get one core between them, whatever the machine
# has; more than this means C code ran in parallel without it.
ONE_CORE = 1.3
IDLE_SHARE = 0.02  # a thread using less than this is not computing
SPIN_LOOP_LINES = 3  # a busy-wait loop is a header and a line or two of body


def detect_busy(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]) -> list[Finding]:
    holder = _gil_held_in_c(analyses, snapshot)
    if holder is not None:
        return [_gil_holder_finding(holder, analyses, snapshot)]
    findings = []
    contending = _contending(analyses)
    if len(contending) >= 2 and sum(_share(a) for a in contending) <= ONE_CORE:
        findings.append(_contention_finding(contending, snapshot))
    else:
        contending = []
    named = {id(a) for a in contending}
    cpu_bound = [a for a in _running(analyses) if _demand(a) >= CPU_BOUND_SHARE and id(a) not in named]
    if cpu_bound:
        findings.append(_cpu_bound_finding(cpu_bound, snapshot))
    return findings


def _share(analysis: ThreadAnalysis) -> float:
    progress = analysis.thread.progress
    return (progress.cpu_share or 0.0) if progress is not None else 0.0


def _demand(analysis: ThreadAnalysis) -> float:
    progress = analysis.thread.progress
    return (progress.demand_share or 0.0) if progress is not None else 0.0


def _running(analyses: Sequence[ThreadAnalysis]) -> list[ThreadAnalysis]:
    return [a for a in analyses if a.wait.activity is Activity.RUNNING and a.thread.frames]


def _contending(analyses: Sequence[ThreadAnalysis]) -> list[ThreadAnalysis]:
    """Threads that want to run Python code: seen waiting for the GIL (native frames), or
    running Python code and getting a share of a CPU."""
    return [a for a in _running(analyses)
            if a.wait.kind is WaitKind.GIL or _share(a) >= CONTENDING_SHARE
            or (a.thread.owns_gil and any(b.wait.kind is WaitKind.GIL for b in analyses))]


def _gil_held_in_c(analyses: Sequence[ThreadAnalysis], snapshot: Snapshot) -> ThreadAnalysis | None:
    """A thread that held the GIL in every sample at the same place while another thread
    wanted it and did not get it: one long call into C that does not release the GIL.
    (A Python loop hands the GIL over within the switch interval; only C code can keep it.)"""
    for analysis in analyses:
        progress = analysis.thread.progress
        if progress is None or not progress.held_gil_throughout or not progress.same_stack:
            continue
        if _called(analysis, snapshot) is None or _spins(analysis, snapshot):
            continue  # not at a call: a Python loop, which hands the GIL over
        others = [a for a in analyses if a is not analysis]
        if any(_moved(a) for a in others):
            continue
        if (_share(analysis) < IDLE_SHARE and others) or any(_wants_gil(a) for a in others):
            return analysis
    return None


# Waits whose system call is not futex(2): a thread in one of them found in futex has
# returned from it and waits to take the GIL back.
_OUTSIDE_FUTEX = frozenset({WaitKind.SLEEP, WaitKind.SELECT, WaitKind.SOCKET_ACCEPT, WaitKind.SOCKET_RECV,
                            WaitKind.SOCKET_SEND, WaitKind.SOCKET_CONNECT, WaitKind.FILE_READ,
                            WaitKind.SUBPROCESS_WAIT})


def _wants_gil(analysis: ThreadAnalysis) -> bool:
    if analysis.wait.kind is WaitKind.GIL:
        return True
    if analysis.wait.activity is Activity.RUNNING:
        return True  # runnable Python code that did not move
    # Its Python frame is in a sleep or a read, but the kernel finds it in futex(2) or on a
    # CPU: it has returned from that call and is trying to take the GIL back.
    kernel = analysis.thread.kernel
    return analysis.wait.kind in _OUTSIDE_FUTEX and kernel is not None and (
        kernel.syscall == "futex" or kernel.state == "R")


def _moved(analysis: ThreadAnalysis) -> bool:
    progress = analysis.thread.progress
    return progress is not None and not progress.same_stack


def _gil_holder_finding(holder: ThreadAnalysis, analyses: Sequence[ThreadAnalysis],
                        snapshot: Snapshot) -> Finding:
    progress = holder.thread.progress
    assert progress is not None
    call = _call_text(holder, snapshot)
    c_code = _native_text(holder)
    stopped = [a for a in analyses if a is not holder]
    stopped_refs = tuple(thread_ref(a, "stands still once it needs the GIL") for a in stopped)
    at = wait_evidence(holder, snapshot, note="the call into C")
    evidence: tuple[Evidence, ...] = (at,) if at is not None else ()
    window = f"{progress.window_seconds:.2f} s"
    if _share(holder) < IDLE_SHARE:
        return Finding(
            kind="gil-held-while-blocked",
            severity=Severity.CRITICAL,
            confidence=Confidence.LIKELY,
            title=(f"{holder.thread.label} is blocked in a call into C{call} that keeps the GIL: "
                   "no other thread can run Python code"),
            explanation=(
                f"{holder.thread.label} held the GIL in every sample over {window}, at the same place, "
                f"without using the CPU{c_code}: it waits inside C code that did not release the GIL. "
                f"Until that call returns, every other thread ({len(stopped)}) is stopped as soon as "
                "it needs the GIL: timers, heartbeats and signal handlers included."
            ),
            threads=(thread_ref(holder, "holds the GIL, blocked in C"), *stopped_refs),
            evidence=evidence,
            suggestions=fixes.gil_held_while_blocked(),
        )
    return Finding(
        kind="cpu-bound",
        severity=Severity.WARNING,
        confidence=Confidence.LIKELY,
        title=(f"{holder.thread.label} computes in a call into C{call} that keeps the GIL: "
               "no other thread can run Python code until it returns"),
        explanation=(
            f"{holder.thread.label} held the GIL in every sample over {window}, at the same place, "
            f"using {_percent(_share(holder))} of a CPU{c_code}. The process is busy, not deadlocked, "
            f"but every other thread ({len(stopped)}) stands still until the call returns."
        ),
        threads=(thread_ref(holder, f"holds the GIL, {_percent(_share(holder))} CPU"), *stopped_refs),
        evidence=evidence,
        suggestions=fixes.gil_held_while_computing(_called(holder, snapshot)),
    )


def _contention_finding(contending: Sequence[ThreadAnalysis], snapshot: Snapshot) -> Finding:
    total = sum(_share(a) for a in contending)
    usage = f", {_percent(total)} of one CPU between them" if total else ""
    return Finding(
        kind="gil-contention",
        severity=Severity.INFO,
        confidence=Confidence.LIKELY,
        title=f"{len(contending)} threads take turns on the GIL{usage}",
        explanation=(
            f"{some_threads(labels(contending))} all run Python code; only the "
            "thread holding the GIL runs at any instant, so together they get at most one CPU "
            "however many the machine has. The process is busy, not hung: each of them moves "
            "between samples."
        ),
        threads=tuple(_busy_ref(a) for a in contending),
        evidence=_distinct(wait_evidence(a, snapshot) for a in contending),
        suggestions=fixes.gil_contention(),
    )


def _cpu_bound_finding(threads: Sequence[ThreadAnalysis], snapshot: Snapshot) -> Finding:
    spinning = [a for a in threads if _spins(a, snapshot)]
    names = some_threads(labels(threads))
    verb = "is" if len(threads) == 1 else "are"
    if spinning:
        spin_names = some_threads(labels(spinning))
        title = f"{spin_names} {'spins' if len(spinning) == 1 else 'spin'} in a tight loop on the CPU"
        explanation = (
            f"{spin_names} was on a CPU or waiting for one {_percent(max(_demand(a) for a in spinning))} of "
            "the time and at the same "
            "line of a loop in every sample: it busy-waits for a condition, and if nothing will "
            "make that condition true it burns a CPU forever. "
            f"{'It holds' if len(spinning) == 1 else 'They hold'} the GIL much of the time, slowing "
            "every other thread."
        )
    else:
        title = f"{names} {verb} busy on the CPU"
        explanation = (
            f"{names} {verb} computing: CPU time grew between samples and the stack moved. "
            "The process is busy, not hung."
        )
    return Finding(
        kind="cpu-bound",
        severity=Severity.WARNING if spinning else Severity.INFO,
        confidence=Confidence.LIKELY,
        title=title,
        explanation=explanation,
        threads=tuple(_busy_ref(a) for a in threads),
        evidence=_distinct(_where(a, snapshot) for a in spinning or threads),
        suggestions=fixes.spin_wait() if spinning else fixes.cpu_bound(),
    )


def _spins(analysis: ThreadAnalysis, snapshot: Snapshot) -> bool:
    """In one small `while` loop in every sample (`while not ready: pass`), found at its
    header or its body."""
    progress = analysis.thread.progress
    frame = analysis.thread.innermost_own_frame
    if progress is None or not progress.innermost_lines or frame is None:
        return False
    source = snapshot.source(frame.filename)
    if source is None or frame is not analysis.thread.frames[0]:
        return False
    first, last = progress.innermost_lines[0], progress.innermost_lines[-1]
    for header in range(first, max(first - SPIN_LOOP_LINES, 0), -1):
        loop = sourcecode.statement_at(source, header)
        if isinstance(loop, ast.While) and loop.lineno == header:
            return last <= (loop.end_lineno or header) <= header + SPIN_LOOP_LINES
    return False


def _busy_ref(analysis: ThreadAnalysis) -> ThreadRef:
    if analysis.wait.kind is WaitKind.GIL:
        return thread_ref(analysis, "waits for the GIL")
    share, demand = _share(analysis), _demand(analysis)
    if demand >= share + 0.1:
        return thread_ref(analysis, f"on a CPU {_percent(share)} of the time, runnable {_percent(demand)}")
    return thread_ref(analysis, f"on a CPU {_percent(share)} of the time" if share else "runs Python code")


def _where(analysis: ThreadAnalysis, snapshot: Snapshot) -> Evidence | None:
    frame = analysis.thread.innermost_own_frame
    if frame is None:
        return None
    return frame_evidence(frame, snapshot, note=f"{analysis.thread.label} is here in every sample"
                          if analysis.thread.progress and analysis.thread.progress.same_stack else "")


def _called(analysis: ThreadAnalysis, snapshot: Snapshot) -> str | None:
    """The function called at the thread's own innermost line (`match` of `re.match(...)`)."""
    frame = analysis.site_frame
    source = snapshot.source(frame.filename) if frame is not None else None
    statement = sourcecode.statement_at(source, frame.line) if source is not None and frame else None
    calls = sourcecode.calls_in(statement) if statement is not None else []
    return calls[0].name if calls else None


def _call_text(analysis: ThreadAnalysis, snapshot: Snapshot) -> str:
    frame = analysis.site_frame
    if frame is None:
        return ""
    call = _called(analysis, snapshot)
    return f" ({call}() in {frame.function})" if call else f" (in {frame.function})"


def _native_text(analysis: ThreadAnalysis) -> str:
    named = [f for f in analysis.thread.native_frames if not f.function.startswith("0x")]
    if not named:
        return ""
    entry = named[-1]
    return f"; in C it is in {entry.function} ({entry.library_name})"


def _distinct(evidence: Iterable[Evidence | None], limit: int = 4) -> tuple[Evidence, ...]:
    """Each place once: four threads in one loop are one place to look at."""
    places: dict[tuple[str, int], Evidence] = {}
    for item in evidence:
        if item is not None:
            places.setdefault((item.file, item.line), item)
    return tuple(places.values())[:limit]


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"
