"""The text report: the verdict first, then each finding, then every thread.

Formatters yield lines; every string that came from the target goes through
`clean` before it reaches the terminal.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from threaddoc.classify import Activity
from threaddoc.findings import BUSY_KINDS, DEADLOCK_KINDS
from threaddoc.findings.groups import SAMPLE_NAMES, collapsed, sample_of
from threaddoc.findings.model import (
    Confidence,
    CycleStep,
    Evidence,
    Finding,
    ResourceRef,
    Severity,
    ThreadRef,
    Verdict,
)
from threaddoc.findings.processes import signature
from threaddoc.model import Frame, ShownValue, Snapshot, Thread, report_order
from threaddoc.pipeline import ManyReports, Report
from threaddoc.resolve import ThreadAnalysis
from threaddoc.sanitize import clean_line

from .groups import GROUP_AT_LEAST, stack_groups
from .paths import display_path

# NAME, TID, STATE, FOR, CPU, WAITING ON, WHERE
Row = tuple[str, str, str, str, str, str, str]

# How the thread table marks a row of many threads: `\N{MULTIPLICATION SIGN}9,874`.
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Style:
    color: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def red(self, text: str) -> str:
        return self._wrap("1;31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def use_color(stream_is_tty: bool, requested: bool | None = None) -> bool:
    """Color on a terminal unless NO_COLOR is set (https://no-color.org) or asked otherwise."""
    if requested is not None:
        return requested
    return stream_is_tty and not os.environ.get("NO_COLOR")


def render(report: Report, style: Style = Style()) -> Iterator[str]:
    yield from _headline(report, style)
    yield ""
    deadlocks = sum(1 for finding in report.findings if finding.kind in DEADLOCK_KINDS)
    if deadlocks:
        yield style.bold(f"Found {deadlocks} deadlock{'s' * (deadlocks != 1)}:")
        yield ""
    kin = Kinship(report.analyses)
    for number, finding in enumerate(report.findings, 1):
        yield from _finding(number, finding, kin, style)
        yield ""
    yield from _waits_outside_findings(report, style)
    yield from _warnings(report, style)
    yield from _children(report, style)
    yield from _thread_table(report, kin, style)
    yield from _shown_locals(report.snapshot, style)


def _children(report: Report, style: Style) -> Iterator[str]:
    if not report.children:
        return
    yield style.bold(f"Child processes ({len(report.children)})")
    for child in report.children:
        yield f"  {child.snapshot.process.pid}  {_verdict_line(child)}"
    yield ""


def _verdict_line(report: Report) -> str:
    critical = [f for f in report.findings if f.severity is Severity.CRITICAL]
    if critical:
        return f"{report.verdict.value.upper()}: {clean_line(critical[0].title)}"
    busy = [f for f in report.findings if f.kind in BUSY_KINDS]
    if busy:
        return f"busy: {clean_line(busy[0].title)}"
    return f"no hang found ({_activity_counts(report.analyses)})"


def render_many(many: ManyReports, style: Style = Style()) -> Iterator[str]:
    """Several processes: how many are stuck and how (grouped), then one full report per
    way of being stuck and per healthy process."""
    total = len(many.reports) + len(many.failures)
    stuck = sum(len(group.reports) for group in many.groups)
    if stuck:
        label = "DEADLOCK" if many.verdict is Verdict.DEADLOCK else "HANG"
        yield style.red(f"threaddoc: {label} in {stuck} of {total} processes")
    elif many.verdict is Verdict.BUSY:
        yield style.yellow(f"threaddoc: no hang found in {total} processes (some are busy)")
    else:
        yield style.green(f"threaddoc: no hang found in {total} processes")
    for group in many.groups:
        pids = ", ".join(str(pid) for pid in group.pids)
        same = "stuck the same way, " if len(group.reports) > 1 else ""
        yield f"  {len(group.reports)} of {total} ({pids}): {same}{group.kind}: {clean_line(group.title)}"
    for report in many.reports:
        if not signature(report.findings):
            yield f"  {report.snapshot.process.pid}: {_verdict_line(report)}"
    for failure in many.failures:
        yield f"  {failure.pid}: could not be inspected: {clean_line(failure.message)}"
    followers = {id(report) for group in many.groups for report in group.reports[1:]}
    for report in many.reports:
        if id(report) in followers:
            continue
        yield ""
        led = next((g for g in many.groups if g.reports[0] is report), None)
        also = f" (also {', '.join(str(p) for p in led.pids[1:])}: stuck the same way)" \
            if led is not None and len(led.reports) > 1 else ""
        yield style.bold(f"=== {_subject(report.snapshot)}{also} ===")
        yield from render(report, style)


def _subject(snapshot: Snapshot) -> str:
    """What was diagnosed: a process, or a saved dump (whose PID may be unknown)."""
    origin, pid = snapshot.origin, snapshot.process.pid
    if origin is None:
        return f"process {pid}"
    dumped = clean_line(origin.described)
    return f"process {pid} ({dumped.removeprefix('the ')})" if pid else dumped


def _headline(report: Report, style: Style) -> Iterator[str]:
    facts = report.snapshot.process
    subject = _subject(report.snapshot)
    critical = [f for f in report.findings if f.severity is Severity.CRITICAL]
    if report.verdict is Verdict.NO_HANG:
        counts = _activity_counts(report.analyses)
        yield style.green(f"threaddoc: no hang found in {subject}") + f" ({counts})"
    elif report.verdict is Verdict.BUSY:
        busy = next(f for f in report.findings if f.kind in BUSY_KINDS)
        yield style.yellow(f"threaddoc: BUSY, not hung: {subject}") + ": " + clean_line(busy.title)
    else:
        label = "DEADLOCK" if report.verdict is Verdict.DEADLOCK else "HANG"
        yield style.red(f"threaddoc: {label} in {subject}") + ": " + clean_line(critical[0].title)
        if len(critical) > 1:
            yield f"  and {len(critical) - 1} more critical finding{'s' * (len(critical) > 2)} below"
    details = [f"pid {facts.pid}"] if facts.pid else []
    if facts.python_version:
        details.append(f"Python {clean_line(facts.python_version)}")
    details.append(f"{len(report.analyses):,} thread{'s' * (len(report.analyses) != 1)}")
    if facts.cmdline:
        details.append(clean_line(" ".join(facts.cmdline))[:160])
    yield style.dim("  " + " · ".join(details))
    if report.main_thread is not None:
        yield f"  main thread {clean_line(report.main_thread.doing)}"


def _activity_counts(analyses: Sequence[ThreadAnalysis]) -> str:
    counts: dict[str, int] = {}
    for analysis in analyses:
        key = analysis.wait.activity.value
        counts[key] = counts.get(key, 0) + 1
    order = [Activity.RUNNING.value, Activity.IDLE.value, Activity.BLOCKED.value]
    return ", ".join(f"{counts[key]} {key}" for key in order if key in counts)


def _finding(number: int, finding: Finding, kin: Kinship, style: Style) -> Iterator[str]:
    paint = style.red if finding.severity is Severity.CRITICAL else style.yellow
    yield paint(f"[{number}] {finding.kind}") + style.dim(
        f" · {finding.severity.value} · {finding.confidence.value}")
    yield "    " + style.bold(clean_line(finding.title))
    yield ""
    if finding.cycle:
        for index, step in enumerate(finding.cycle):
            yield from _cycle_step(step, finding.cycle[index - 1], finding, style)
    else:
        yield from _threads_and_evidence(finding, kin, style)
    if finding.blocked:
        yield ""
        yield "    Blocked behind it:"
        for same in _blocked_runs(finding, kin):
            ref, where = same[0]
            line = f"      {_thread(ref)}" if len(same) == 1 else f"      {_threads([r for r, _ in same])}:"
            if ref.role:
                line += f" {clean_line(ref.role)}"
            if where is not None:
                line += f", at {_location(where)}"
            yield line
    yield ""
    yield "    Why: " + clean_line(finding.explanation)
    for note in finding.notes:
        yield "    " + style.dim(clean_line(note))
    if finding.suggestions:
        yield ""
        yield "    " + style.bold("Fix:")
        for suggestion in finding.suggestions:
            yield "      - " + clean_line(suggestion.summary)
            for example_line in suggestion.example.splitlines():
                yield "            " + style.dim(clean_line(example_line))


def _cycle_step(step: CycleStep, previous: CycleStep, finding: Finding, style: Style) -> Iterator[str]:
    """jstack's shape: the thread, what it holds (acquired where), what it waits for (where),
    and who holds that."""
    yield f"    {style.bold(_thread(step.thread))}"
    if previous.via in ("lock", "import") and previous.taken_at is not None:
        yield f"        holds {_resource(previous.held_as or previous.resource)}"
        yield from _evidence(previous.taken_at, "          acquired at ")
    if step.via == "join":
        yield f"        joins {_thread(step.held_by)}"
        if step.waits_at is not None:
            yield from _evidence(step.waits_at, "          at ")
        return
    if step.via == "future":
        task = f" (its task runs {clean_line(step.resource.task)})" if step.resource.task else ""
        yield f"        waits for the future {style.bold(clean_line(step.resource.name))}{task}"
        if step.waits_at is not None:
            yield from _evidence(step.waits_at, "          at ")
        yield f"          whose task runs on {_thread(step.held_by)}"
        return
    yield f"        waits for {style.bold(clean_line(step.resource.label or step.resource.name))}" + (
        f" ({_resource_detail(step.resource)})")
    if step.waits_at is not None:
        yield from _evidence(step.waits_at, "          at ")
    held = {Confidence.CONFIRMED: "held by", Confidence.LIKELY: "likely held by"}.get(
        finding.confidence, "possibly held by")
    holder = "itself" if step.held_by == step.thread else _thread(step.held_by)
    yield f"          {held} {holder}"


def _resource(resource: ResourceRef) -> str:
    return f"{clean_line(resource.label or resource.name)} ({_resource_detail(resource)})"


def _resource_detail(resource: ResourceRef) -> str:
    kind = clean_line(resource.lock_type or resource.kind)
    return ", ".join(part for part in (kind, clean_line(resource.detail)) if part)


class Kinship:
    """Which threads are alike: the same stack and the same wait (render.groups). A finding
    lists alike threads with the same role as one line; any other thread has its own."""

    def __init__(self, analyses: Sequence[ThreadAnalysis]) -> None:
        self.groups = stack_groups(analyses)
        self._group: dict[tuple[str, int | None], int] = {}
        for group in self.groups:
            for index in group.members:
                thread = analyses[index].thread
                # A name and tid seen twice (a dump without tids) cannot tell its threads apart.
                ref = (thread.name, thread.os_thread_id)
                self._group[ref] = -1 if ref in self._group else group.number

    def of(self, ref: ThreadRef, role: str) -> Hashable:
        group = self._group.get((ref.name, ref.os_thread_id), -1)
        return (role, group) if group >= 0 else (role, "alone", ref.name, ref.os_thread_id)


def _blocked_runs(finding: Finding, kin: Kinship) -> list[list[tuple[ThreadRef, Evidence | None]]]:
    """Threads blocked behind a finding; GROUP_AT_LEAST or more alike threads blocked the same
    way are one run."""
    return collapsed(finding.blocked, lambda blocked: kin.of(blocked[0], blocked[0].role))


def _thread_runs(finding: Finding, kin: Kinship) -> list[list[ThreadRef]]:
    """A finding's threads, except those also listed as blocked behind it; GROUP_AT_LEAST or
    more alike threads with the same role (waiters of one lock) are one run."""
    blocked_names = {ref.name for ref, _ in finding.blocked}
    return collapsed([ref for ref in finding.threads if ref.name not in blocked_names],
                     lambda ref: kin.of(ref, ref.role))


def _threads_and_evidence(finding: Finding, kin: Kinship, style: Style) -> Iterator[str]:
    for same in _thread_runs(finding, kin):
        ref = same[0]
        who = _thread(ref) if len(same) == 1 else _threads(same)
        yield f"    {style.bold(who)}" + (f": {clean_line(ref.role)}" if ref.role else "")
    for evidence in finding.evidence:
        prefix = f"      {clean_line(evidence.note)}, at " if evidence.note else "      at "
        yield from _evidence(evidence, prefix)


def _evidence(evidence: Evidence, prefix: str) -> Iterator[str]:
    yield f"{prefix}{_location(evidence)}"
    if evidence.code:
        yield " " * 15 + clean_line(evidence.code)


def _location(evidence: Evidence) -> str:
    return f"{clean_line(display_path(evidence.file))}:{evidence.line} in {clean_line(evidence.function)}"


def _thread(ref: ThreadRef) -> str:
    tid = f" (tid {ref.os_thread_id})" if ref.os_thread_id is not None else ""
    return f'"{clean_line(ref.name)}"{tid}'


def _threads(refs: Sequence[ThreadRef]) -> str:
    """Many threads in one line: `9,874 threads ("request-1" (tid 3154), … and 9,871 more)`,
    the first in report order (as in the thread table)."""
    first = heapq.nsmallest(SAMPLE_NAMES, refs, key=_ref_order)
    return f"{len(refs):,} threads ({sample_of([_thread(ref) for ref in first], len(refs))})"


def _ref_order(ref: ThreadRef) -> tuple[int, int, str]:
    """`report_order` of the thread a reference names."""
    return (0 if ref.name == "MainThread" else 1, ref.os_thread_id or 0, ref.name)


def _waits_outside_findings(report: Report, style: Style) -> Iterator[str]:
    """Who blocks whom where it is not a deadlock: waits for a lock another thread holds."""
    in_findings = {ref.name for finding in report.findings for ref in finding.threads}
    edges = [edge for edge in sorted(report.graph.edges,
                                     key=lambda e: report_order(report.analyses[e.waiter].thread))
             if report.analyses[edge.waiter].thread.name not in in_findings and edge.waiter != edge.holder]
    lines = []
    for same in collapsed(edges, lambda e: (e.via, e.resource.key or e.resource.name, e.holder)):
        edge = same[0]
        holder = report.analyses[edge.holder]
        what = clean_line(edge.resource.label or edge.resource.name)
        doing = holder.wait.summary
        if len(same) == 1:
            who = _thread_name(report.analyses[edge.waiter])
            verb = "joins" if edge.via == "join" else f"waits for {what}, held by"
        else:
            names = [_thread_name(report.analyses[e.waiter]) for e in same[:SAMPLE_NAMES]]
            who = f"{len(same):,} threads ({sample_of(names, len(same))})"
            verb = "join" if edge.via == "join" else f"wait for {what}, held by"
        lines.append(f"  {who} {verb} {_thread_name(holder)} ({clean_line(doing)})")
    if lines:
        yield style.bold("Blocked behind another thread (not a deadlock):")
        yield from lines
        yield ""


def _thread_name(analysis: ThreadAnalysis) -> str:
    return f'"{clean_line(analysis.thread.name)}"'


def _warnings(report: Report, style: Style) -> Iterator[str]:
    if report.snapshot.warnings:
        for warning in report.snapshot.warnings:
            yield style.yellow("warning: ") + clean_line(warning)
        yield ""


def _thread_table(report: Report, kin: Kinship, style: Style) -> Iterator[str]:
    """A row per thread, except that GROUP_AT_LEAST or more threads with the same stack and
    the same wait are one row, `\N{MULTIPLICATION SIGN}9,874`, with the first names; the threads that findings
    name one by one, holders above all, keep a row of their own."""
    analyses = report.analyses
    table: list[Row] = [("NAME", "TID", "STATE", "FOR", "CPU", "WAITING ON", "WHERE")]
    rows = _table_rows(report, kin)
    table += [_thread_row(analyses[members[0]]) if len(members) == 1 else _group_row(analyses, members)
              for members in rows]
    widths = [min(max(len(row[column]) for row in table), 32) for column in range(6)]
    grouped = sum(len(members) for members in rows if len(members) > 1)
    note = f"; {grouped:,} in rows {TIMES}N: N threads with the same stack and wait" if grouped else ""
    yield style.bold(f"Threads ({len(analyses):,}{note})")
    for index, row in enumerate(table):
        cells = [row[column][:32].ljust(widths[column]) for column in range(6)]
        line = "  " + "  ".join([*cells, row[6]])
        yield style.dim(line.rstrip()) if index == 0 else line.rstrip()


def _table_rows(report: Report, kin: Kinship) -> list[list[int]]:
    """The threads of each row of the table (indexes into the analyses), in report order."""
    alone = _named_one_by_one(report, kin)
    rows: list[list[int]] = []
    for group in kin.groups:
        together = [index for index in group.members if index not in alone]
        rows += [[index] for index in group.members if index in alone]
        if len(together) >= GROUP_AT_LEAST:
            rows.append(together)
        else:
            rows += [[index] for index in together]
    return sorted(rows, key=lambda members: report_order(report.analyses[members[0]].thread))


def _named_one_by_one(report: Report, kin: Kinship) -> set[int]:
    """Threads that must keep their own row: every holder others wait for, every member of
    a cycle, every thread a finding lists by itself (not as one of many), and the main
    thread, which the headline speaks of."""
    by_ref: dict[tuple[str, int | None], list[int]] = {}
    for index, analysis in enumerate(report.analyses):
        by_ref.setdefault((analysis.thread.name, analysis.thread.os_thread_id), []).append(index)
    refs: list[ThreadRef] = []
    for finding in report.findings:
        refs += [ref for step in finding.cycle for ref in (step.thread, step.held_by)]
        refs += [same[0] for same in _thread_runs(finding, kin) if len(same) == 1]
        refs += [same[0][0] for same in _blocked_runs(finding, kin) if len(same) == 1]
    if report.main_thread is not None:
        refs.append(ThreadRef(report.main_thread.name, report.main_thread.os_thread_id))
    alone = {edge.holder for edge in report.graph.edges if edge.holder != edge.waiter}
    for ref in refs:
        alone.update(by_ref.get((ref.name, ref.os_thread_id), ()))
    return alone


def _group_row(analyses: Sequence[ThreadAnalysis], members: Sequence[int]) -> Row:
    """One row for threads with the same stack and wait: their count, what they all show,
    how long all of them have waited at least, the most CPU any used, and the first names."""
    first = _thread_row(analyses[members[0]])
    waited = [seconds for index in members if (seconds := analyses[index].waited_seconds) is not None]
    shares = [progress.cpu_share for index in members
              if (progress := analyses[index].thread.progress) is not None and progress.cpu_share is not None]
    names = [clean_line(analyses[index].thread.name) for index in members[:SAMPLE_NAMES]]
    return (
        f"{TIMES}{len(members):,}",
        "",
        first[2],
        duration(min(waited)) if waited else "",
        f"{max(shares) * 100:.0f}%" if shares else "",
        first[5],
        f"{first[6]}  ({sample_of(names, len(members))})",
    )


def duration(seconds: float | None) -> str:
    """`≥45s`, `≥12m03s`, `≥2h13m`: how long a thread has waited, Go-dump style. A lower
    bound: the kernel's clock restarts whenever something (a debugger) wakes the thread."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"≥{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"≥{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"≥{whole}s"
    return f"≥{whole // 3600}h{whole % 3600 // 60:02d}m"


def _thread_row(analysis: ThreadAnalysis) -> Row:
    thread = analysis.thread
    waits_on = analysis.waits_for.name if analysis.waits_for else ""
    frame = analysis.site_frame or thread.innermost_own_frame or (thread.frames[0] if thread.frames else None)
    where = (f"{display_path(frame.filename)}:{frame.line} in {frame.function}" if frame else "")
    in_c = [native.function for native in thread.native_frames if not native.function.startswith("0x")]
    if in_c:
        where += f" (in C: {in_c[-1]})"
    share = thread.progress.cpu_share if thread.progress is not None else None
    return (
        clean_line(thread.name),
        str(thread.os_thread_id or ""),
        analysis.wait.kind.value,
        duration(analysis.waited_seconds),
        f"{share * 100:.0f}%" if share is not None else "",
        clean_line(waits_on),
        clean_line(where),
    )


def _shown_locals(snapshot: Snapshot, style: Style) -> Iterator[str]:
    """--show-locals: each thread's frames with the values of their locals, innermost first;
    what looks secret is hidden, and the heading says how many were."""
    if not snapshot.shows_locals:
        return
    values = snapshot.shown_values
    yield ""
    if not values:
        yield style.bold("Local variables (--show-locals): none to show") + f": {_why_no_values(snapshot)}"
        return
    redacted = sum(1 for value in values if value.redacted)
    yield style.bold(f"Local variables (--show-locals): {len(values)} values, {redacted} redacted") + (
        " because their names or contents look secret" if redacted else "")
    for thread in sorted(snapshot.threads, key=report_order):
        framed = [frame for frame in thread.frames if any(local.shown for local in frame.locals)]
        if framed:
            yield f"  {_thread_heading(thread)}"
        for frame in framed:
            yield f"    {_frame_heading(frame)}"
            yield from (_local_line(local.name, local.shown, style) for local in frame.locals if local.shown)


def _why_no_values(snapshot: Snapshot) -> str:
    if snapshot.origin is None:
        return "py-spy read no values"
    return (f"{clean_line(snapshot.origin.described)} holds no values (threaddoc's own files never do; "
            "`py-spy dump --json --locals` output does)")


def _thread_heading(thread: Thread) -> str:
    tid = f" (tid {thread.os_thread_id})" if thread.os_thread_id is not None else ""
    return f'"{clean_line(thread.name)}"{tid}'


def _frame_heading(frame: Frame) -> str:
    return f"{clean_line(frame.function)} at {clean_line(display_path(frame.filename))}:{frame.line}"


def _local_line(name: str, shown: ShownValue, style: Style) -> str:
    if shown.redacted:
        return f"      {clean_line(name)} = " + style.yellow(shown.text) + style.dim(
            f" ({clean_line(shown.reason or 'it looks secret')})")
    return f"      {clean_line(name)} = {clean_line(shown.text)}"
