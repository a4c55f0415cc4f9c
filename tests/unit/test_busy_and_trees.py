"""Busy, not hung; the GIL; process trees and several processes (CPython 3.8-3.13 recordings)."""

from __future__ import annotations

import json

import pytest
from conftest import recording_names, report

from threaddoc.classify import WaitKind
from threaddoc.findings import Finding, Severity, Verdict
from threaddoc.pipeline import Report, group_reports
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render
from threaddoc.schema import load_schema


def _kinds(diagnosis: Report) -> list[str]:
    return [finding.kind for finding in diagnosis.findings]


def _one(diagnosis: Report, kind: str) -> Finding:
    [finding] = [f for f in diagnosis.findings if f.kind == kind]
    return finding


def _assert_never_hung(diagnosis: Report) -> None:
    assert diagnosis.verdict in (Verdict.BUSY, Verdict.NO_HANG), _kinds(diagnosis)
    assert not [f for f in diagnosis.findings if f.severity is Severity.CRITICAL]


@pytest.mark.parametrize("name", recording_names("gil_contention-py"))
def test_threads_taking_turns_on_the_gil_are_busy(name: str) -> None:
    diagnosis = report(name)
    _assert_never_hung(diagnosis)
    assert diagnosis.verdict is Verdict.BUSY
    finding = _one(diagnosis, "gil-contention")
    assert finding.severity is Severity.INFO
    assert len(finding.threads) >= 2 and all(ref.name.startswith("verifier-") for ref in finding.threads)


@pytest.mark.parametrize("name", recording_names("cpu_spin_waits_for_flag-py"))
def test_a_thread_spinning_on_a_flag_is_busy_with_a_warning(name: str) -> None:
    diagnosis = report(name)
    _assert_never_hung(diagnosis)
    finding = _one(diagnosis, "cpu-bound")
    assert finding.severity is Severity.WARNING and "spins" in finding.title
    assert "Event" in finding.suggestions[0].summary
    assert any("while not" in evidence.code for evidence in finding.evidence)


@pytest.mark.parametrize("name", recording_names("regex_holds_gil-py"))
def test_a_regex_holding_the_gil_stops_the_other_threads_but_is_not_a_hang(name: str) -> None:
    diagnosis = report(name)
    _assert_never_hung(diagnosis)
    finding = _one(diagnosis, "cpu-bound")
    assert finding.severity is Severity.WARNING and "keeps the GIL" in finding.title
    holder = finding.threads[0]
    assert holder.role.startswith("holds the GIL")
    others = {a.thread.name for a in diagnosis.analyses} - {holder.name}
    assert {ref.name for ref in finding.threads[1:]} == others
    assert "backtracks" in finding.suggestions[0].summary


@pytest.mark.parametrize("name", recording_names("ctypes_call_holds_gil-py"))
def test_a_c_call_blocked_holding_the_gil_is_a_hang(name: str) -> None:
    diagnosis = report(name)
    assert diagnosis.verdict is Verdict.HANG
    finding = _one(diagnosis, "gil-held-while-blocked")
    assert finding.severity is Severity.CRITICAL
    assert "ctypes.CDLL" in finding.suggestions[0].summary


@pytest.mark.parametrize("name", recording_names("slow_worker_progressing-py"))
def test_a_slow_worker_that_progresses_is_not_hung(name: str) -> None:
    diagnosis = report(name)
    _assert_never_hung(diagnosis)
    assert not [f for f in diagnosis.findings if f.severity is Severity.WARNING]


@pytest.mark.parametrize("name", recording_names("gil_contention-native"))
def test_native_frames_are_kept_and_never_turn_busy_into_hung(name: str) -> None:
    diagnosis = report(name)
    _assert_never_hung(diagnosis)
    assert diagnosis.snapshot.native
    assert any(a.thread.native_frames for a in diagnosis.analyses)
    document = json_render.report_document(diagnosis)
    assert all(thread["native_frames"] is not None for thread in document["threads"])


def test_native_frames_show_threads_waiting_for_the_gil() -> None:
    waiting = [a for name in recording_names("gil_contention-native") for a in report(name).analyses
               if a.wait.kind is WaitKind.GIL]
    assert waiting, "no recording shows a verifier waiting for the GIL in take_gil"


@pytest.mark.parametrize("name", recording_names("workers_same_deadlock-py"))
def test_children_stuck_the_same_way_are_one_finding_of_the_parent(name: str) -> None:
    parent = report(name)
    assert len(parent.children) == 3
    assert parent.verdict is Verdict.DEADLOCK
    finding = _one(parent, "lock-order-deadlock")
    pids = [str(child.snapshot.process.pid) for child in parent.children]
    assert "3 of 3 child processes" in finding.title
    assert [ref.name for ref in finding.resources if ref.kind == "process"] == pids
    assert finding.cycle, "the cycle of the first child is shown"
    assert finding.threads[0].name == "MainThread" and "waits on" in finding.threads[0].role


@pytest.mark.parametrize("name", recording_names("workers_same_deadlock-py"))
def test_several_processes_stuck_the_same_way_are_grouped(name: str) -> None:
    parent = report(name)
    many = group_reports([*parent.children, parent])
    # The workers, stuck the same way; the parent is stuck waiting on them (another way).
    group, waiting_parent = many.groups
    assert waiting_parent.pids == (parent.snapshot.process.pid,)
    assert group.pids == tuple(child.snapshot.process.pid for child in parent.children)
    assert group.kind == "lock-order-deadlock"
    assert many.verdict is Verdict.DEADLOCK
    text = "\n".join(text_render.render_many(many))
    assert text.startswith("threaddoc: DEADLOCK in 4 of 4 processes")
    assert "3 of 4" in text and "stuck the same way" in text
    # One full report per way of being stuck: the first worker's, and the parent's.
    assert text.count("=== process ") == 2
    document = json.loads(json_render.render_many(many))
    _validate(document)
    assert document["groups"][0]["pids"] == list(group.pids)
    assert len(document["reports"]) == 4


@pytest.mark.parametrize("name", recording_names("pool_child_deadlock-py"))
def test_a_parent_waiting_on_a_pool_is_linked_to_the_deadlocked_worker(name: str) -> None:
    parent = report(name)
    assert parent.verdict is Verdict.DEADLOCK
    finding = _one(parent, "lock-order-deadlock")
    stuck = [child for child in parent.children if child.verdict is Verdict.DEADLOCK]
    assert len(stuck) == 1
    assert [ref.name for ref in finding.resources if ref.kind == "process"] == [
        str(stuck[0].snapshot.process.pid)]
    assert any("pool.map_async" in s.example for s in finding.suggestions)
    _validate(json_render.report_document(parent))


def _validate(document: object) -> None:
    import jsonschema

    jsonschema.validate(document, load_schema())
