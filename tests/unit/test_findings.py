"""Findings and verdicts on the hung samples, on every CPython 3.8-3.13."""

from __future__ import annotations

import dataclasses

import pytest

from threaddoc.findings import Confidence, Severity, Verdict
from threaddoc.pipeline import Report, analyse


def test_lock_order_deadlock_names_threads_locks_and_places(lock_order_report: Report) -> None:
    assert lock_order_report.verdict is Verdict.DEADLOCK
    [finding] = lock_order_report.findings
    assert finding.kind == "lock-order-deadlock"
    assert finding.severity is Severity.CRITICAL
    assert finding.confidence is Confidence.LIKELY
    steps = {step.thread.name: step for step in finding.cycle}
    assert set(steps) == {"teller-1", "teller-2"}
    assert steps["teller-1"].resource.name == "audit_lock"
    assert steps["teller-1"].held_by.name == "teller-2"
    assert steps["teller-2"].resource.name == "ledger_lock"
    assert steps["teller-2"].held_by.name == "teller-1"
    for step in finding.cycle:
        assert step.waits_at is not None and step.taken_at is not None
        assert step.waits_at.code == f"with {step.resource.name}:"
        assert step.taken_at.code == f"with {step.resource.name}:"
        assert step.waits_at.function in ("post_to_audit", "reconcile_ledger")
    assert [ref.name for ref, _ in finding.blocked] == ["MainThread"]
    assert "ledger_lock" in finding.suggestions[0].summary
    assert "audit_lock" in finding.suggestions[0].summary


def test_nested_submit_starves_the_single_worker(nested_submit_report: Report) -> None:
    assert nested_submit_report.verdict is Verdict.HANG
    [finding] = nested_submit_report.findings
    assert finding.kind == "executor-starvation"
    assert finding.confidence is Confidence.LIKELY
    assert [ref.name for ref in finding.threads if ref.role == "starved worker"] == ["renderer_0"]
    assert finding.resources[0].name == "renderer"
    codes = [evidence.code for evidence in finding.evidence]
    assert "chart = pool.submit(render_chart, title)" in codes
    assert any("chart.result()" in code for code in codes)
    assert [ref.name for ref, _ in finding.blocked] == ["MainThread"]
    assert any("max_workers" in s.summary for s in finding.suggestions)
    assert any("timeout" in s.example for s in finding.suggestions)


def test_busy_but_healthy_is_busy_not_hung(healthy_report: Report) -> None:
    # Two threads crunching hashes: busy, and said so; never a hang.
    assert healthy_report.verdict is Verdict.BUSY
    assert not [f for f in healthy_report.findings if f.severity is not Severity.INFO]
    assert {f.kind for f in healthy_report.findings} <= {"cpu-bound", "gil-contention"}
    kinds = {a.thread.name: a.wait.kind.value for a in healthy_report.analyses}
    assert kinds["http-server"] == "server-idle"
    assert kinds["cruncher-0"] == "running"


def _with_pool_constructor(report: Report, constructor: str) -> Report:
    """The nested-submit recording, as if `pool` had been built by `constructor`."""
    snapshot = report.snapshot
    sources = {}
    for path, source in snapshot.sources.items():
        text = source.text
        if path.endswith("nested_submit_starvation.py"):
            original = 'ThreadPoolExecutor(max_workers=1, thread_name_prefix="renderer")'
            assert original in text
            text = text.replace(original, constructor)
        sources[path] = dataclasses.replace(source, text=text)
    return analyse(dataclasses.replace(snapshot, sources=sources))


@pytest.mark.parametrize(
    "constructor",
    [
        "ProcessPoolExecutor(max_workers=4)",  # inner futures run in child processes
        'ThreadPoolExecutor(max_workers=4, thread_name_prefix="charts")',  # another pool's workers
    ],
)
def test_inner_work_sent_to_another_executor_is_not_starvation(
    nested_submit_report: Report, constructor: str
) -> None:
    assert _with_pool_constructor(nested_submit_report, constructor).findings == ()


def test_same_pool_without_a_name_prefix_is_still_starvation(nested_submit_report: Report) -> None:
    report = _with_pool_constructor(nested_submit_report, "ThreadPoolExecutor(max_workers=1)")
    assert [finding.kind for finding in report.findings] == ["executor-starvation"]
