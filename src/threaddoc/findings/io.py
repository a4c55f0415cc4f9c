"""Threads stuck in I/O: holding a lock others need, reading with no timeout, or waiting
for a child whose output pipe nobody reads. The kernel says which system call and which
file descriptor; psutil says where a socket goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc.classify import WaitKind
from threaddoc.graph import Edge, WaitGraph
from threaddoc.model import ChildProcess, FileDescriptor, Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import (
    and_list,
    held_evidence,
    labels,
    resource_ref,
    some_threads,
    thread_ref,
    wait_evidence,
    waiters_evidence,
)
from .model import Confidence, Evidence, Finding, ResourceRef, Severity

IO_KINDS = frozenset({
    WaitKind.SOCKET_RECV, WaitKind.SOCKET_SEND, WaitKind.SOCKET_CONNECT, WaitKind.SOCKET_ACCEPT,
    WaitKind.FILE_READ, WaitKind.SLEEP, WaitKind.SELECT, WaitKind.SUBPROCESS_WAIT,
    WaitKind.SUBPROCESS_COMMUNICATE,
})


@dataclass(frozen=True)
class BlockedIO:
    text: str  # a verb phrase: "is blocked in recvfrom() on socket 127.0.0.1:50312 -> …", "sleeps"
    file: FileDescriptor | None
    no_timeout: bool


def blocked_io(analysis: ThreadAnalysis, snapshot: Snapshot) -> BlockedIO:
    kernel = analysis.thread.kernel
    fd = kernel.blocked_fd if kernel is not None else None
    if kernel is not None and fd is not None:
        file = snapshot.open_files.get(fd)
        where = file.describe if file is not None else f"fd {fd}"
        return BlockedIO(f"is blocked in {kernel.syscall}() on {where}", file, no_timeout=True)
    no_timeout = analysis.wait.has_timeout is False
    return BlockedIO(analysis.wait.summary, None, no_timeout=no_timeout)


def detect_io_hangs(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], graph: WaitGraph
) -> list[Finding]:
    findings = []
    holders_during_io = set()
    for index, analysis in enumerate(analyses):
        if analysis.wait.kind not in IO_KINDS:
            continue
        waiters = [edge for edge in graph.edges if edge.holder == index and edge.via == "lock"
                   and edge.waiter != index]
        if waiters:
            holders_during_io.add(index)
            findings.append(_lock_held_during_io(snapshot, analyses, index, waiters))
    for index, analysis in enumerate(analyses):
        if index not in holders_during_io:
            finding = _blocking_io(snapshot, analysis)
            if finding is not None:
                findings.append(finding)
    findings.extend(_pipe_deadlocks(snapshot, analyses))
    return findings


def _lock_held_during_io(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], holder: int, edges: Sequence[Edge]
) -> Finding:
    analysis = analyses[holder]
    io = blocked_io(analysis, snapshot)
    locks = list(dict.fromkeys(edge.resource.label or edge.resource.name for edge in edges))
    waiter_names = labels([analyses[edge.waiter] for edge in edges])
    evidence: list[Evidence] = []
    for edge in edges[:1]:
        if edge.held is not None:
            evidence.append(held_evidence(analysis, edge.held, snapshot,
                                          note=f"{analysis.thread.label} took {locks[0]}"))
    at = wait_evidence(analysis, snapshot, note=f"{analysis.thread.label} {io.text}")
    if at is not None:
        evidence.append(at)
    evidence += waiters_evidence([analyses[edge.waiter] for edge in edges], snapshot,
                                 one="waits for it", many="wait for it")
    severity = Severity.CRITICAL if io.no_timeout else Severity.WARNING
    return Finding(
        kind="lock-held-during-io",
        severity=severity,
        confidence=Confidence.LIKELY,
        title=(f"{analysis.thread.label} holds {and_list(locks)} while it {io.text}; "
               f"{some_threads(waiter_names)} wait{'s' * (len(waiter_names) == 1)} for it"),
        explanation=(
            f"{analysis.thread.label} took {and_list(locks)} and then, still holding it, {io.text}"
            + (" with no timeout" if io.no_timeout else "")
            + ". Everyone who needs the lock queues behind it for as long as the I/O takes"
            + (": if the other side never answers, forever." if io.no_timeout else ".")
        ),
        threads=(thread_ref(analysis, f"holds {and_list(locks)} during I/O"),
                 *(thread_ref(analyses[edge.waiter], f"waits for {edge.resource.name}") for edge in edges)),
        resources=(*dict.fromkeys(resource_ref(edge.resource) for edge in edges), *_file_resources(io.file)),
        evidence=tuple(evidence),
        suggestions=fixes.lock_held_during_io(edges[0].resource.name),
    )


def _blocking_io(snapshot: Snapshot, analysis: ThreadAnalysis) -> Finding | None:
    if analysis.wait.kind not in (WaitKind.SOCKET_RECV, WaitKind.SOCKET_SEND, WaitKind.SOCKET_CONNECT,
                                  WaitKind.FILE_READ):
        return None
    io = blocked_io(analysis, snapshot)
    if not io.no_timeout or io.file is None:
        return None
    file = io.file
    if file.target.startswith("socket:"):
        if _accepted_here(file, snapshot):
            return None  # a server reading its client: idle by design
        severity = Severity.CRITICAL
        peer = file.remote or "its peer"
        title = f"{analysis.thread.label} waits for {peer} with no timeout: it {io.text}"
    elif file.target.startswith("pipe:"):
        severity = Severity.WARNING
        title = f"{analysis.thread.label} waits on a pipe with no timeout: it {io.text}"
    else:
        return None
    at = wait_evidence(analysis, snapshot, note=f"{analysis.thread.label} {io.text}")
    return Finding(
        kind="blocking-io-no-timeout",
        severity=severity,
        confidence=Confidence.LIKELY,
        title=title,
        explanation=(
            f"The kernel shows that {analysis.thread.label} {io.text}: a socket with a timeout "
            "would wait in poll() first. If the other side never answers, this thread waits forever."
        ),
        threads=(thread_ref(analysis, "blocked in I/O"),),
        resources=_file_resources(file),
        evidence=(at,) if at is not None else (),
        suggestions=fixes.io_timeouts(),
    )


def _accepted_here(file: FileDescriptor, snapshot: Snapshot) -> bool:
    """A connection this process accepted: its local port is one the process listens on."""
    listening = {f.local.rsplit(":", 1)[-1] for f in snapshot.open_files.values()
                 if f.status == "LISTEN" and f.local}
    return file.local is not None and file.local.rsplit(":", 1)[-1] in listening


def _file_resources(file: FileDescriptor | None) -> tuple[ResourceRef, ...]:
    if file is None:
        return ()
    kind = "socket" if file.target.startswith("socket:") else "pipe" if file.target.startswith("pipe:") \
        else "file"
    return (ResourceRef(kind, file.describe, f"fd {file.fd}", label=file.remote or file.describe),)


def _pipe_deadlocks(snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]) -> list[Finding]:
    waiting = [a for a in analyses if a.wait.kind is WaitKind.SUBPROCESS_WAIT]
    if not waiting:
        return []
    ours = {f.target for f in snapshot.open_files.values() if f.target.startswith("pipe:")}
    findings = []
    for child in snapshot.child_processes:
        pipe = _blocked_writing_to(child)
        if pipe is None or pipe[1] not in ours:
            continue
        fd, target = pipe
        stream = {1: "stdout", 2: "stderr"}.get(fd, f"fd {fd}")
        command = " ".join(child.cmdline)[:120]
        evidence = waiters_evidence(waiting, snapshot, one=f"waits for child {child.pid} to exit",
                                    many=f"wait for child {child.pid} to exit")
        findings.append(Finding(
            kind="subprocess-pipe-deadlock",
            severity=Severity.CRITICAL,
            confidence=Confidence.LIKELY,
            title=(f"{some_threads(labels(waiting))} wait{'s' * (len(waiting) == 1)} "
                   "for child "
                   f"process {child.pid} to exit, but it is blocked writing to its {stream} pipe, "
                   "which nobody reads"),
            explanation=(
                f"Child {child.pid} ({command}) is blocked in write() to its {stream} ({target}): "
                "the pipe buffer is full. This process holds the read end but waits in Popen.wait() "
                "instead of reading it, so the child can never finish and wait() never returns."
            ),
            threads=tuple(thread_ref(a, f"waits for child {child.pid}") for a in waiting),
            resources=(ResourceRef("process", str(child.pid), command),
                       ResourceRef("pipe", target, f"the child's {stream}")),
            evidence=tuple(evidence),
            suggestions=fixes.subprocess_pipe(),
        ))
    return findings


def _blocked_writing_to(child: ChildProcess) -> tuple[int, str] | None:
    kernel = child.kernel
    if kernel is None or kernel.syscall != "write" or not kernel.arguments:
        return None
    fd = kernel.arguments[0]
    target = child.fds.get(fd)
    return (fd, target) if target is not None and target.startswith("pipe:") else None

