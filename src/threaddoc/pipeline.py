"""The diagnosis, stage by stage (see DESIGN.md):

    collect -> model -> classify -> resolve -> graph -> findings -> render

`analyse` is pure: it turns a snapshot into a report and is what the unit tests
run on recordings.  `diagnose` adds collection from a live process.

The stages after collection are imported where they are called, never before the
target is read (the kernel's view of its threads must be read before py-spy attaches):
a live diagnosis loads them while it waits for py-spy or between two samples
(`load_analysis`, handed to collect.waiting by the CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threaddoc.collect import Recording, collect

if TYPE_CHECKING:
    from threaddoc.collect.saved import SourceRoot
    from threaddoc.findings import Finding, Verdict
    from threaddoc.findings.main_thread import MainThread
    from threaddoc.graph import WaitGraph
    from threaddoc.model import Snapshot
    from threaddoc.resolve import ThreadAnalysis


@dataclass(frozen=True)
class Report:
    snapshot: Snapshot
    analyses: tuple[ThreadAnalysis, ...]
    graph: WaitGraph
    findings: tuple[Finding, ...]
    verdict: Verdict
    main_thread: MainThread | None = None
    children: tuple[Report, ...] = ()


def load_analysis() -> None:
    """Import the stages after collection (a live diagnosis does it while py-spy runs)."""
    import threaddoc.classify
    import threaddoc.findings
    import threaddoc.findings.main_thread
    import threaddoc.graph
    import threaddoc.resolve  # noqa: F401


def analyse(snapshot: Snapshot) -> Report:
    from threaddoc.classify import classify_all
    from threaddoc.findings import find_all, verdict_of
    from threaddoc.findings.main_thread import main_thread
    from threaddoc.graph import build_graph
    from threaddoc.resolve import resolve_all

    children = tuple(analyse(child) for child in snapshot.children)
    waits = classify_all(snapshot)
    analyses = resolve_all(snapshot, waits)
    graph = build_graph(analyses)
    findings = find_all(snapshot, analyses, graph, [(c.snapshot, c.analyses, c.findings) for c in children])
    return Report(snapshot, analyses, graph, findings, verdict_of(findings), main_thread(analyses),
                  children)


def analyse_recording(recording: Recording) -> Report:
    return analyse(recording.to_snapshot())


DEFAULT_SAMPLES = 3
DEFAULT_INTERVAL = 0.25


def record(pid: int, *, py_spy: str | None = None, timeout: float = 20.0,
           samples: int = DEFAULT_SAMPLES, interval: float = DEFAULT_INTERVAL,
           native: bool = False, children: bool = False, show_locals: bool = False,
           collector: str = "auto") -> Recording:
    """What a diagnosis of a live process is made from; `--save` writes it (never the values
    `show_locals` keeps for the report). `collector`: auto, py-spy or memory (collect.COLLECTORS)."""
    return collect(pid, py_spy=py_spy, timeout=timeout, samples=samples, interval=interval,
                   native=native, all_children=children, show_locals=show_locals, collector=collector)


def diagnose(pid: int, *, py_spy: str | None = None, timeout: float = 20.0,
             samples: int = DEFAULT_SAMPLES, interval: float = DEFAULT_INTERVAL,
             native: bool = False, children: bool = False, show_locals: bool = False,
             collector: str = "auto") -> Report:
    return analyse_recording(record(pid, py_spy=py_spy, timeout=timeout, samples=samples,
                                    interval=interval, native=native, children=children,
                                    show_locals=show_locals, collector=collector))


def diagnose_saved(path: str, roots: Sequence[SourceRoot] = (), show_locals: bool = False) -> list[Report]:
    """A saved dump (`--from FILE`, `-` for standard input), in whichever format it is."""
    from threaddoc.collect.saved import load_saved, read_dump_file

    text, written = read_dump_file(path)
    return [analyse(snapshot) for snapshot in load_saved(text, path, roots, written, show_locals)]


def diagnose_core(core: str, *, py_spy: str | None = None, timeout: float = 20.0,
                  roots: Sequence[SourceRoot] = (), show_locals: bool = False) -> Report:
    from threaddoc.collect.saved import load_core

    return analyse(load_core(core, py_spy, timeout, roots, show_locals))


# Several processes at once (`threaddoc diagnose 101 102 103`, `--name gunicorn`).

@dataclass(frozen=True)
class Group:
    """Processes stuck the same way: the same kinds of finding at the same lines of code."""

    reports: tuple[Report, ...]
    kind: str
    title: str  # of the first process's first critical finding

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(report.snapshot.process.pid for report in self.reports)


@dataclass(frozen=True)
class Failure:
    pid: int
    message: str  # the error's one line


@dataclass(frozen=True)
class ManyReports:
    reports: tuple[Report, ...]
    groups: tuple[Group, ...]
    failures: tuple[Failure, ...] = ()

    @property
    def verdict(self) -> Verdict:
        from threaddoc.findings import Verdict

        verdicts = {report.verdict for report in self.reports}
        order = (Verdict.DEADLOCK, Verdict.HANG, Verdict.BUSY, Verdict.NO_HANG)
        return next((v for v in order if v in verdicts), Verdict.NO_HANG)


def group_reports(reports: Sequence[Report], failures: Sequence[Failure] = ()) -> ManyReports:
    """Group the stuck processes by how they are stuck, largest group first."""
    from threaddoc.findings import Severity
    from threaddoc.findings.processes import signature

    by_signature: dict[object, list[Report]] = {}
    for report in reports:
        key = signature(report.findings)
        if key:
            by_signature.setdefault(key, []).append(report)
    groups = []
    for members in sorted(by_signature.values(), key=len, reverse=True):
        lead = next(f for f in members[0].findings if f.severity is Severity.CRITICAL)
        groups.append(Group(tuple(members), lead.kind, lead.title))
    return ManyReports(tuple(reports), tuple(groups), tuple(failures))
