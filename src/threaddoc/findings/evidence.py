"""Building references and evidence from analysed threads (shared by detectors)."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.model import Frame, Snapshot
from threaddoc.resolve import Held, Resource, ThreadAnalysis

from .groups import GROUP_AT_LEAST, and_list, collapsed, labels, some_of, some_threads
from .model import Evidence, ResourceRef, ThreadRef

__all__ = ["GROUP_AT_LEAST", "and_list", "collapsed", "frame_evidence", "held_evidence", "labels",
           "resource_ref", "some_of", "some_threads", "thread_ref", "wait_evidence", "waiters_evidence"]


def thread_ref(analysis: ThreadAnalysis, role: str = "") -> ThreadRef:
    return ThreadRef(analysis.thread.name, analysis.thread.os_thread_id, role)


def resource_ref(resource: Resource) -> ResourceRef:
    return ResourceRef(resource.kind, resource.name, resource.detail, resource.lock_type,
                       resource.label or resource.name, resource.library, resource.task)


def frame_evidence(frame: Frame, snapshot: Snapshot, line: int | None = None,
                   note: str = "") -> Evidence:
    at = line if line is not None else frame.line
    source = snapshot.source(frame.filename)
    return Evidence(frame.filename, at, frame.function, source.line(at) if source else "", note)


def wait_evidence(analysis: ThreadAnalysis, snapshot: Snapshot, note: str = "") -> Evidence | None:
    frame = analysis.site_frame
    return frame_evidence(frame, snapshot, note=note) if frame is not None else None


def held_evidence(analysis: ThreadAnalysis, held: Held, snapshot: Snapshot,
                  note: str = "") -> Evidence:
    return frame_evidence(analysis.thread.frames[held.frame], snapshot, held.line, note)


def waiters_evidence(waiters: Sequence[ThreadAnalysis], snapshot: Snapshot, one: str,
                     many: str) -> list[Evidence]:
    """Where the waiters wait: an entry per thread (`"request-1" waits for it`), except
    where GROUP_AT_LEAST or more wait at the same line, which is one entry for all of them
    (`9,874 threads (request-1, … and 9,871 more) wait for it`). `one` and `many` are the
    verb phrase for one thread and for several (no `one`: a thread's entry has no note)."""
    evidence = []
    for same in collapsed(waiters, _wait_site):
        note = (f"{same[0].thread.label} {one}" if one else "") if len(same) == 1 else \
            f"{some_threads(labels(same))} {many}"
        at = wait_evidence(same[0], snapshot, note=note)
        if at is not None:
            evidence.append(at)
    return evidence


def _wait_site(analysis: ThreadAnalysis) -> tuple[str, int, str] | None:
    frame = analysis.site_frame
    return (frame.filename, frame.line, frame.function) if frame is not None else None
