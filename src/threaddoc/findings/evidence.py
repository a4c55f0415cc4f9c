"""Building references and evidence from analysed threads (shared by detectors)."""

from __future__ import annotations

from collections.abc import Sequence

from threaddoc.model import Frame, Snapshot
from threaddoc.resolve import Held, Resource, ThreadAnalysis

from .model import Evidence, ResourceRef, ThreadRef


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


def and_list(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
