"""The diagnosis, stage by stage (see DESIGN.md):

    collect -> model -> classify -> resolve -> graph -> findings -> render

`analyse` is pure: it turns a snapshot into a report and is what the unit tests
run on recordings.  `diagnose` adds collection from a live process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc.classify import classify_all
from threaddoc.collect import Recording, collect
from threaddoc.collect.saved import SourceRoot, load_core, load_saved, read_dump_file
from threaddoc.findings import Finding, Severity, Verdict, find_all, verdict_of
from threaddoc.findings.main_thread import MainThread, main_thread
from threaddoc.findings.processes import signature
from threaddoc.graph import WaitGraph, build_graph
from threaddoc.model import Snapshot
from threaddoc.resolve import ThreadAnalysis, resolve_all


@dataclass(frozen=True)
class Report:
    snapshot: Snapshot
    analyses: tuple[ThreadAnalysis, ...]
    graph: WaitGraph
    findings: tuple[Finding, ...]
    verdict: Verdict
    main_thread: MainThread | None = None
    children: tuple[Report, ...] = ()


def analyse(snapshot: Snapshot) -> Report:
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
    text, written = read_dump_file(path)
    return [analyse(snapshot) for snapshot in load_saved(text, path, roots, written, show_locals)]


def diagnose_core(core: str, *, py_spy: str | None = None, timeout: float = 20.0,
                  roots: Sequence[SourceRoot] = (), show_locals: bool = False) -> Report:
    return analyse(load_core(core, py_spy, timeout, roots, show_locals))


# Several processes at once (`threaddoc diagnose 101 102 103`, `--name gunicorn`).

_VERDICT_ORDER = (Verdict.DEADLOCK, Verdict.HANG, Verdict.BUSY, Verdict.NO_HANG)


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
        verdicts = {report.verdict for report in self.reports}
        return next((v for v in _VERDICT_ORDER if v in verdicts), Verdict.NO_HANG)


def group_reports(reports: Sequence[Report], failures: Sequence[Failure] = ()) -> ManyReports:
    """Group the stuck processes by how they are stuck, largest group first."""
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
