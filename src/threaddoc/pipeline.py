"""The diagnosis, stage by stage (see DESIGN.md):

    collect -> model -> classify -> resolve -> graph -> findings -> render

`analyse` is pure: it turns a snapshot into a report and is what the unit tests
run on recordings.  `diagnose` adds collection from a live process.
"""

from __future__ import annotations

from dataclasses import dataclass

from threaddoc.classify import classify_all
from threaddoc.collect import Recording, collect
from threaddoc.findings import Finding, Verdict, find_all, verdict_of
from threaddoc.findings.main_thread import MainThread, main_thread
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
    findings = find_all(snapshot, analyses, graph, [(c.snapshot, c.analyses) for c in children])
    return Report(snapshot, analyses, graph, findings, verdict_of(findings), main_thread(analyses),
                  children)


def analyse_recording(recording: Recording) -> Report:
    return analyse(recording.to_snapshot())


DEFAULT_SAMPLES = 3
DEFAULT_INTERVAL = 0.25


def diagnose(pid: int, *, py_spy: str | None = None, timeout: float = 20.0,
             samples: int = DEFAULT_SAMPLES, interval: float = DEFAULT_INTERVAL,
             native: bool = False) -> Report:
    return analyse_recording(collect(pid, py_spy=py_spy, timeout=timeout, samples=samples,
                                     interval=interval, native=native))
