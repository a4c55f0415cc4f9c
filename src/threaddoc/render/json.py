"""The JSON report, schema_version 1: built by hand, field by field, because it
is a contract with tooling (see schema/report-v1.json); never `asdict(model)`.

Fields are added, never renamed or removed, within a schema version.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from threaddoc import __version__
from threaddoc.findings import BUSY_KINDS
from threaddoc.findings.main_thread import MainThread
from threaddoc.findings.model import CycleStep, Evidence, Finding, ResourceRef, ThreadRef
from threaddoc.model import Frame, KernelState, Local, Origin, ProcessFacts, Progress, ShownValue, Snapshot
from threaddoc.pipeline import ManyReports, Report
from threaddoc.resolve import Resource, ThreadAnalysis
from threaddoc.sanitize import json_safe

from .groups import StackGroup, stack_groups

SCHEMA_VERSION = 1

JSONObject = dict[str, Any]


def render(report: Report, pretty: bool = True) -> str:
    """Indented for a person; one line for a pipe (the C encoder: ~10x faster on thousands
    of threads, where the indented encoder is the slowest stage of a diagnosis)."""
    with _no_collection_pauses():
        return _dumps(report_document(report), pretty)


def render_many(many: ManyReports, pretty: bool = True) -> str:
    with _no_collection_pauses():
        return _dumps(many_document(many), pretty)


@contextmanager
def _no_collection_pauses() -> Iterator[None]:
    """The document of 10,000 threads is about a million new dicts and lists, none of them
    in a reference cycle: the cyclic collector, triggered again and again by so many
    allocations, walked them all and doubled the time of building it (measured). They
    are freed by reference counting as soon as the text is made."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _dumps(document: JSONObject, pretty: bool) -> str:
    """Readable non-ASCII text, but no raw C1 or bidi control: JSON is read on terminals too.

    No check for circular references: the document is a tree built here from frozen
    dataclasses (a dict shared by `_Shared` is reached twice, never from itself), and the
    check cost a third of encoding 10,000 threads (measured)."""
    if pretty:
        return json_safe(json.dumps(document, indent=2, ensure_ascii=False, check_circular=False)) + "\n"
    return json_safe(json.dumps(document, ensure_ascii=False, separators=(",", ":"),
                                check_circular=False)) + "\n"


def many_document(many: ManyReports) -> JSONObject:
    """Several processes: the groups of processes stuck the same way, and every report."""
    stuck = sum(len(group.reports) for group in many.groups)
    total = len(many.reports) + len(many.failures)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "threaddoc", "version": __version__},
        "verdict": many.verdict.value,
        "summary": f"{stuck} of {total} processes stuck" if stuck else "no hang found",
        "groups": [{"kind": group.kind, "title": group.title, "pids": list(group.pids)}
                   for group in many.groups],
        "reports": [report_document(report) for report in many.reports],
        "failures": [{"pid": failure.pid, "error": failure.message} for failure in many.failures],
    }


def report_document(report: Report) -> JSONObject:
    critical = [f for f in report.findings if f.severity.value == "critical"]
    groups = stack_groups(report.analyses)
    group_of = {index: group.number for group in groups for index in group.members}
    shared = _Shared(report.snapshot.shows_locals)
    document: JSONObject = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "threaddoc", "version": __version__},
        "target": _target(report.snapshot.process),
        "verdict": report.verdict.value,
        "summary": _summary(report, critical),
        "main_thread": _main_thread(report.main_thread),
        "findings": [_finding(finding) for finding in report.findings],
        "threads": [_thread(analysis, _holders(report, index), report.snapshot, group_of[index], shared)
                    for index, analysis in enumerate(report.analyses)],
        "stack_groups": [_stack_group(report.analyses, group) for group in groups],
        "warnings": list(report.snapshot.warnings),
        "children": [report_document(child) for child in report.children],
        "origin": _origin(report.snapshot.origin),
    }
    if report.snapshot.shows_locals:
        document["shown_locals"] = _shown_locals(report.snapshot)
    return document


def _stack_group(analyses: Sequence[ThreadAnalysis], group: StackGroup) -> JSONObject:
    """Threads with the same frames and the same wait: what they share, and which they are
    (indexes into `threads`, in report order), so tools can count without comparing stacks."""
    first = analyses[group.members[0]]
    return {
        "group": group.number,
        "count": len(group.members),
        "threads": list(group.members),
        "state": first.wait.activity.value,
        "wait_kind": first.wait.kind.value,
        "waits_for": _resource(first.waits_for),
        "at": _site(first.site_frame),
    }


def _site(frame: Frame | None) -> JSONObject | None:
    if frame is None:
        return None
    return {"file": frame.filename, "line": frame.line, "function": frame.function}


def _shown_locals(snapshot: Snapshot) -> JSONObject:
    """--show-locals: how many values are in the report, and how many of them are hidden."""
    values = snapshot.shown_values
    return {"values": len(values), "redacted": sum(1 for value in values if value.redacted)}


def _origin(origin: Origin | None) -> JSONObject | None:
    """Where a report made from a saved dump or a core file came from; null when live."""
    if origin is None:
        return None
    return {"format": origin.format, "file": origin.path, "addresses": origin.addresses,
            "notes": list(origin.notes)}


def _summary(report: Report, critical: list[Finding]) -> str:
    if critical:
        return critical[0].title
    busy = [finding for finding in report.findings if finding.kind in BUSY_KINDS]
    return f"busy, not hung: {busy[0].title}" if busy else "no hang found"


def _main_thread(main: MainThread | None) -> JSONObject | None:
    if main is None:
        return None
    return {"name": main.name, "os_thread_id": main.os_thread_id, "doing": main.doing}


def _holders(report: Report, waiter: int) -> list[str]:
    return [report.analyses[edge.holder].thread.name for edge in report.graph.out_of(waiter)]


def _target(facts: ProcessFacts) -> JSONObject:
    return {
        "pid": facts.pid or None,  # unknown for a saved dump that does not name its process
        "cmdline": list(facts.cmdline),
        "exe": facts.exe,
        "python_version": facts.python_version,
        "username": facts.username,
        "create_time": facts.create_time,
        "num_threads": facts.num_threads,
    }


def _finding(finding: Finding) -> JSONObject:
    return {
        "kind": finding.kind,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "title": finding.title,
        "explanation": finding.explanation,
        "threads": [_thread_ref(ref) for ref in finding.threads],
        "thread_count": len(finding.threads),
        "blocked_count": len(finding.blocked),
        "resources": [_resource_ref(ref) for ref in finding.resources],
        "cycle": [_cycle_step(step) for step in finding.cycle],
        "blocked": [{"thread": _thread_ref(ref), "at": _evidence(at)} for ref, at in finding.blocked],
        "evidence": [_evidence(item) for item in finding.evidence],
        "suggestions": [{"summary": s.summary, "example": s.example} for s in finding.suggestions],
        "notes": list(finding.notes),
    }


def _thread_ref(ref: ThreadRef) -> JSONObject:
    return {"name": ref.name, "os_thread_id": ref.os_thread_id, "role": ref.role}


def _resource_ref(ref: ResourceRef) -> JSONObject:
    return {"kind": ref.kind, "name": ref.name, "label": ref.label, "detail": ref.detail,
            "lock_type": ref.lock_type, "task": ref.task}


def _cycle_step(step: CycleStep) -> JSONObject:
    return {
        "thread": _thread_ref(step.thread),
        "waits_for": _resource_ref(step.resource),
        "waits_at": _evidence(step.waits_at),
        "held_by": _thread_ref(step.held_by),
        "taken_at": _evidence(step.taken_at),
        "via": step.via,
    }


def _evidence(evidence: Evidence | None) -> JSONObject | None:
    if evidence is None:
        return None
    return {"file": evidence.file, "line": evidence.line, "function": evidence.function,
            "code": evidence.code, "note": evidence.note}


def _resource(resource: Resource | None) -> JSONObject | None:
    if resource is None:
        return None
    return {
        "kind": resource.kind,
        "name": resource.name,
        "label": resource.label or resource.name,
        "detail": resource.detail,
        "lock_type": resource.lock_type,
        "task": resource.task,
        "address": _hex(resource.address),
        "rooted": resource.rooted,
    }


class _Shared:
    """The JSON of the frames, locals and resources of one report, built once per object:
    the parse stage shares equal frames and locals between threads, and 10,000 threads stuck
    the same way wait for the same few resources. The same dict then stands in the document
    again and again, which encodes to the text equal dicts would. Every object is held by
    the report while this lives, so no id is reused for another."""

    def __init__(self, shows_locals: bool) -> None:
        self._shows_locals = shows_locals
        self._frames: dict[int, JSONObject] = {}
        self._locals: dict[int, JSONObject] = {}
        self._resources: dict[int, JSONObject | None] = {}
        self._sites: dict[int, JSONObject | None] = {}

    def frame(self, frame: Frame) -> JSONObject:
        entry = self._frames.get(id(frame))
        if entry is None:
            entry = self._frames[id(frame)] = _frame(frame, self.local)
        return entry

    def local(self, local: Local) -> JSONObject:
        entry = self._locals.get(id(local))
        if entry is None:
            entry = self._locals[id(local)] = _local(local, self._shows_locals)
        return entry

    def resource(self, resource: Resource | None) -> JSONObject | None:
        if resource is None:
            return None
        if id(resource) not in self._resources:
            self._resources[id(resource)] = _resource(resource)
        return self._resources[id(resource)]

    def site(self, frame: Frame | None) -> JSONObject | None:
        if frame is None:
            return None
        if id(frame) not in self._sites:
            self._sites[id(frame)] = _site(frame)
        return self._sites[id(frame)]


def _thread(analysis: ThreadAnalysis, held_by: list[str], snapshot: Snapshot, group: int,
            shared: _Shared) -> JSONObject:
    thread = analysis.thread
    wait = analysis.wait
    return {
        "name": thread.name,
        "thread_id": thread.thread_id,
        "os_thread_id": thread.os_thread_id,
        "active": thread.active,
        "owns_gil": thread.owns_gil,
        "state": wait.activity.value,
        "wait": {
            "kind": wait.kind.value,
            "summary": wait.summary,
            "resource": shared.resource(analysis.waits_for),
            "has_timeout": wait.has_timeout,
            "held_by": held_by,
            "at": shared.site(analysis.site_frame),
        },
        "holds": [
            {"resource": shared.resource(held.resource), "line": held.line, "how": held.how,
             "file": thread.frames[held.frame].filename}
            for held in analysis.holds
        ],
        "kernel": _kernel(thread.kernel),
        "progress": _progress(thread.progress),
        "waiting_for_seconds": _seconds(analysis.waited_seconds),
        "frames": [shared.frame(frame) for frame in thread.frames],
        "native_frames": [{"function": f.function, "library": f.library} for f in thread.native_frames]
        if snapshot.native else None,
        "group": group,
    }


def _progress(progress: Progress | None) -> JSONObject | None:
    if progress is None:
        return None
    return {"samples": progress.samples, "same_stack": progress.same_stack,
            "cpu_seconds": _seconds(progress.cpu_seconds),
            "window_seconds": _seconds(progress.window_seconds),
            "cpu_share": _seconds(progress.cpu_share), "held_gil_samples": progress.gil_samples}


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _kernel(kernel: KernelState | None) -> JSONObject | None:
    if kernel is None:
        return None
    return {
        "state": kernel.state,
        "syscall": kernel.syscall,
        "futex_address": _hex(kernel.futex_address),
        "wchan": kernel.wchan,
    }


def _frame(frame: Frame, local_entry: Callable[[Local], JSONObject]) -> JSONObject:
    return {
        "function": frame.function,
        "file": frame.filename,
        "line": frame.line,
        "module": frame.module,
        "stdlib": frame.is_stdlib,
        "locals": [local_entry(local) for local in frame.locals],
    }


def _local(local: Local, shows_locals: bool) -> JSONObject:
    """Identities only: a local's value never leaves threaddoc unless asked for, and then
    as `shown`, redacted where it looks secret (never as `value` or `repr`)."""
    entry: JSONObject = {"name": local.name, "type": local.type_name, "address": _hex(local.address),
                         "arg": local.is_arg}
    if shows_locals:
        entry["shown"] = _shown(local.shown)
    return entry


def _shown(shown: ShownValue | None) -> JSONObject | None:
    if shown is None:
        return None
    return {"text": shown.text, "redacted": shown.redacted, "reason": shown.reason}


def _hex(address: int | None) -> str | None:
    return f"{address:#x}" if address is not None else None
