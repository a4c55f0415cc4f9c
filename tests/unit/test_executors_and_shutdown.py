"""Futures, executors and shutdown on recordings of the hung samples (CPython 3.8-3.13)."""

from __future__ import annotations

import textwrap

import pytest
from conftest import recording_names, report

from threaddoc import sourcecode
from threaddoc.findings import Finding, Severity, Verdict
from threaddoc.model import SourceFile


def _only(name: str, kind: str) -> Finding:
    [finding] = report(name).findings
    assert finding.kind == kind
    return finding


@pytest.mark.parametrize("name", recording_names("report_pool_starvation"))
def test_every_worker_of_a_four_worker_pool_is_starved(name: str) -> None:
    finding = _only(name, "executor-starvation")
    assert finding.resources[0].name == "report" and finding.resources[0].detail == "4 workers"
    assert [ref.name for ref in finding.threads if ref.role == "starved worker"] == [
        "report_0", "report_1", "report_2", "report_3"]
    assert sum(1 for evidence in finding.evidence if ".submit(" in evidence.code) == 4


@pytest.mark.parametrize("name", recording_names("futures_wait_on_each_other"))
def test_tasks_waiting_on_each_others_futures(name: str) -> None:
    diagnosis = report(name)
    assert [f.kind for f in diagnosis.findings] == ["future-cross-wait"]  # not also starvation
    [finding] = diagnosis.findings
    assert {step.thread.name for step in finding.cycle} == {"stage_0", "stage_1"}
    assert {step.via for step in finding.cycle} == {"future"}
    for step in finding.cycle:
        assert step.resource.name.startswith('pending["')  # the program's own spelling
        assert step.resource.task is not None
        assert step.held_by.name != step.thread.name


@pytest.mark.parametrize(
    ("sample", "keeper", "advice"),
    [("exit_blocked_by_polling_thread", "metrics-poller", "join(timeout"),
     ("exit_blocked_by_queue_consumer", "order-consumer", "sentinel"),
     ("executor_shutdown_stuck_worker", "upload_0", "cancel_futures=True")],
)
def test_exit_waits_for_a_thread_that_will_not_end(sample: str, keeper: str, advice: str) -> None:
    for name in recording_names(sample):
        finding = _only(name, "blocked-shutdown")
        assert [ref.name for ref in finding.threads if ref.role == "keeps the process alive"] == [keeper]
        assert any(advice in s.summary + s.example for s in finding.suggestions)


@pytest.mark.parametrize("name", recording_names("exit_blocked_by_polling_thread"))
def test_main_thread_says_the_script_is_finished(name: str) -> None:
    main = report(name).main_thread
    assert main is not None and main.doing.startswith("has finished the script")


@pytest.mark.parametrize("name", recording_names("process_pool_result_never_comes-py"))
def test_parent_waiting_on_a_stuck_worker_process(name: str) -> None:
    diagnosis = report(name)
    [child] = diagnosis.children
    finding = _only(name, "blocked-shutdown")
    assert str(child.snapshot.process.pid) in finding.title
    assert any(e.note.startswith(f"worker process {child.snapshot.process.pid}") for e in finding.evidence)


@pytest.mark.parametrize(
    "name", recording_names("busy_pool_long_queue") + recording_names("exit_waits_for_progressing_job"))
def test_busy_pools_and_progressing_jobs_are_not_hangs(name: str) -> None:
    diagnosis = report(name)
    assert diagnosis.verdict in (Verdict.NO_HANG, Verdict.BUSY)
    assert not [f for f in diagnosis.findings if f.severity is not Severity.INFO]


def test_daemon_threads_are_recognised_from_the_code_that_starts_them() -> None:
    source = SourceFile("/app/svc.py", textwrap.dedent("""\
        import threading
        threading.Thread(target=refresh_cache, daemon=True).start()
        threading.Thread(target=write_orders).start()

        class Heartbeat(threading.Thread):
            def __init__(self):
                super().__init__(daemon=True)
        """))
    assert sourcecode.daemon_thread_targets(source) == {"refresh_cache", "Heartbeat"}


def test_a_future_is_matched_whatever_quotes_spell_it() -> None:
    assert sourcecode.canonical('pending["rows"]') == sourcecode.canonical("pending['rows']")
