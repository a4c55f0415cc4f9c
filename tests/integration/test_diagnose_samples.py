"""`threaddoc diagnose` against the real hung samples, under CPython 3.8 to 3.13.

Each sample is started under each interpreter, diagnosed once as text and once
as JSON (see `diagnose_sample` in conftest.py), and stopped; the tests below
check what a user is promised about that diagnosis.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import assert_clean_run, assert_real_tid

pytestmark = pytest.mark.integration

LOCK_ORDER = "lock_order_deadlock.py"
NESTED_SUBMIT = "nested_submit_starvation.py"
HEALTHY = "busy_but_healthy.py"
SAMPLES = (LOCK_ORDER, NESTED_SUBMIT, HEALTHY)


@pytest.fixture
def lock_order(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    return diagnose_sample(python_interpreter, LOCK_ORDER)


@pytest.fixture
def nested_submit(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    return diagnose_sample(python_interpreter, NESTED_SUBMIT)


@pytest.fixture
def healthy(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    return diagnose_sample(python_interpreter, HEALTHY)


# ----------------------------------------------------------------------------- helpers


def assert_report_header(diagnosis: Any) -> None:
    report = diagnosis.report
    assert report["schema_version"] == 1, diagnosis.context()
    assert report["tool"]["name"] == "threaddoc", diagnosis.context()
    assert report["target"]["pid"] == diagnosis.pid, diagnosis.context()
    minor = diagnosis.python.parent.parent.name.rsplit(".", 1)[0]
    version = str(report["target"]["python_version"])
    assert version == minor or version.startswith(minor + "."), (
        f"target python_version should be {minor}\n{diagnosis.context()}")


def assert_location(diagnosis: Any, location: dict[str, Any], what: str) -> None:
    """A file:line:code location that points at the sample and quotes its source exactly."""
    assert location["file"].endswith(diagnosis.sample), f"{what}: {location}"
    line = location["line"]
    assert isinstance(line, int) and line > 0, f"{what}: {location}"
    source = diagnosis.source_lines
    assert line <= len(source), f"{what}: line {line} is past the end of the file"
    assert location["code"].strip() == source[line - 1].strip(), (
        f"{what}: code {location['code']!r} is not line {line} of {diagnosis.sample}: "
        f"{source[line - 1].strip()!r}")


def assert_wait_kinds(diagnosis: Any, expected: dict[str, str]) -> None:
    threads = diagnosis.threads()
    for name, kind in expected.items():
        assert name in threads, f"thread {name} missing from threads[]: {sorted(threads)}"
        assert threads[name]["wait"]["kind"] == kind, (
            f"{name} should wait with kind {kind}, got {threads[name]['wait']}")
        assert_real_tid(diagnosis, threads[name], f"threads[{name}]")


# ----------------------------------------------------------------------------- schema


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_report_matches_schema(python_interpreter, diagnose_sample, validate_json_report,  # type: ignore[no-untyped-def]
                                    sample):
    diagnosis = diagnose_sample(python_interpreter, sample)
    validate_json_report(diagnosis.report, diagnosis.sample)


# ----------------------------------------------------------------------------- lock order


def test_lock_order_text_names_the_deadlock(lock_order):  # type: ignore[no-untyped-def]
    assert_clean_run(lock_order, 1)
    first = lock_order.text.first_line
    assert "DEADLOCK" in first, lock_order.context()
    for name in ("teller-1", "teller-2", "ledger_lock", "audit_lock"):
        assert name in first, f"the first line does not name {name}\n{lock_order.context()}"


def test_lock_order_json_verdict_and_cycle(lock_order):  # type: ignore[no-untyped-def]
    assert_clean_run(lock_order, 1)
    assert_report_header(lock_order)
    report = lock_order.report
    assert report["verdict"] == "deadlock", lock_order.context()

    findings = lock_order.findings("lock-order-deadlock")
    assert len(findings) == 1, f"expected one lock-order-deadlock finding\n{lock_order.context()}"
    finding = findings[0]
    assert finding["severity"] == "critical", finding

    cycle = finding["cycle"]
    assert len(cycle) == 2, cycle
    steps = {step["thread"]["name"]: step for step in cycle}
    assert set(steps) == {"teller-1", "teller-2"}, cycle
    assert {step["waits_for"]["name"] for step in cycle} == {"ledger_lock", "audit_lock"}, cycle

    # The direction of the cycle: who waits for which lock, and who holds it.
    expected = {"teller-1": ("audit_lock", "teller-2"), "teller-2": ("ledger_lock", "teller-1")}
    for name, (lock, holder) in expected.items():
        step = steps[name]
        assert step["waits_for"]["name"] == lock, step
        assert step["held_by"]["name"] == holder, step
        assert_real_tid(lock_order, step["thread"], f"cycle step {name}")
        assert_real_tid(lock_order, step["held_by"], f"holder of {lock}")
        for place in ("waits_at", "taken_at"):
            location = step[place]
            assert_location(lock_order, location, f"{name} {place}")
            assert location["code"].startswith("with "), f"{name} {place}: {location}"
            assert lock in location["code"], f"{name} {place} should be about {lock}: {location}"

    blocked = [entry["thread"]["name"] for entry in finding["blocked"]]
    assert "MainThread" in blocked, f"MainThread is not listed as blocked: {finding['blocked']}"


def test_lock_order_thread_waits(lock_order):  # type: ignore[no-untyped-def]
    assert_wait_kinds(lock_order, {
        "teller-1": "lock-acquire",
        "teller-2": "lock-acquire",
        "MainThread": "thread-join",
    })
    threads = lock_order.threads()
    assert threads["teller-1"]["wait"]["resource"]["name"] == "audit_lock", threads["teller-1"]
    assert threads["teller-2"]["wait"]["resource"]["name"] == "ledger_lock", threads["teller-2"]


# ----------------------------------------------------------------------------- nested submit


def test_nested_submit_text_names_the_worker(nested_submit):  # type: ignore[no-untyped-def]
    assert_clean_run(nested_submit, 1)
    first = nested_submit.text.first_line
    assert "HANG" in first and "no hang" not in first.lower(), nested_submit.context()
    assert "DEADLOCK" not in first, nested_submit.context()
    assert "renderer_0" in nested_submit.text.stdout, nested_submit.context()


def test_nested_submit_json_starvation(nested_submit):  # type: ignore[no-untyped-def]
    assert_clean_run(nested_submit, 1)
    assert_report_header(nested_submit)
    report = nested_submit.report
    assert report["verdict"] == "hang", nested_submit.context()

    findings = nested_submit.findings("executor-starvation")
    assert len(findings) == 1, f"expected one executor-starvation finding\n{nested_submit.context()}"
    finding = findings[0]
    assert finding["severity"] == "critical", finding
    workers = [thread for thread in finding["threads"] if thread["name"] == "renderer_0"]
    assert workers, f"the finding does not name renderer_0: {finding['threads']}"
    assert_real_tid(nested_submit, workers[0], "renderer_0 in the finding")

    submits = [item for item in finding["evidence"] if ".submit(" in item.get("code", "")]
    assert submits, f"no evidence quotes the .submit( line: {finding['evidence']}"
    for item in submits:
        assert_location(nested_submit, item, "submit evidence")
    assert not nested_submit.findings("lock-order-deadlock"), nested_submit.context()


def test_nested_submit_thread_waits(nested_submit):  # type: ignore[no-untyped-def]
    assert_wait_kinds(nested_submit, {
        "renderer_0": "future-result",
        "MainThread": "future-result",
    })


# ----------------------------------------------------------------------------- healthy


def test_healthy_text_says_no_hang(healthy):  # type: ignore[no-untyped-def]
    assert_clean_run(healthy, 0)
    first = healthy.text.first_line
    # Crunching threads make it busy: said so, never a hang.
    assert "no hang" in first.lower() or "busy, not hung" in first.lower(), healthy.context()
    assert "DEADLOCK" not in first and "HANG" not in first, healthy.context()


def test_healthy_json_no_hang(healthy):  # type: ignore[no-untyped-def]
    assert_clean_run(healthy, 0)
    assert_report_header(healthy)
    report = healthy.report
    assert report["verdict"] in ("no-hang", "busy"), healthy.context()
    critical = [finding for finding in report["findings"] if finding["severity"] == "critical"]
    assert not critical, f"critical findings in a healthy process: {critical}"


def test_healthy_thread_waits(healthy):  # type: ignore[no-untyped-def]
    # MainThread (feeding the queue) and job-taker (draining it) are caught at
    # varying points of their loops; the other threads are always in one state.
    assert_wait_kinds(healthy, {
        "http-server": "server-idle",
        "cruncher-0": "running",
        "cruncher-1": "running",
    })
    names = set(healthy.threads())
    assert {"MainThread", "job-taker"} <= names, sorted(names)
