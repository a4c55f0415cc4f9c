"""`threaddoc diagnose` against the executor and shutdown samples, CPython 3.8 to 3.13.

Each sample in hung_samples/ is one way a program built on thread pools, futures
or non-daemon threads stops for good -- a pool starved by nested submits, two
tasks waiting for each other's futures, an exit held up by a polling thread or
by a queue consumer, a `with ThreadPoolExecutor(...)` block whose shutdown
waits for a stuck task, a parent waiting for a worker process that waits for
the parent -- or one way such a program merely looks stuck: a pool busy with a
long queue, an exit waiting for a job that makes progress.  Each is started
under each interpreter, diagnosed once as text and once as JSON (see
`diagnose_sample` in conftest.py), and stopped.

Where the report points at code, the expected line is read from the sample's
source (the function, then the statement in it), never hard-coded.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import SAMPLES as SAMPLES_DIR
from .conftest import SampleDiagnosis, assert_clean_run, assert_real_tid

pytestmark = pytest.mark.integration

REPORT_POOL = "report_pool_starvation.py"
CROSS_WAIT = "futures_wait_on_each_other.py"
POLLER_EXIT = "exit_blocked_by_polling_thread.py"
CONSUMER_EXIT = "exit_blocked_by_queue_consumer.py"
SHUTDOWN_STUCK = "executor_shutdown_stuck_worker.py"
PROCESS_POOL = "process_pool_result_never_comes.py"
BUSY_POOL = "busy_pool_long_queue.py"
PROGRESSING_EXIT = "exit_waits_for_progressing_job.py"

HANGS = (REPORT_POOL, CROSS_WAIT, POLLER_EXIT, CONSUMER_EXIT, SHUTDOWN_STUCK, PROCESS_POOL)
NOT_HANGS = (BUSY_POOL, PROGRESSING_EXIT)
SAMPLES = HANGS + NOT_HANGS

EXIT_NO_HANG = 0
EXIT_HANG = 1
KEEPS_ALIVE = "keeps the process alive"

Diagnose = Callable[[Path, str], SampleDiagnosis]


# ----------------------------------------------------------------------------- the samples' source


@functools.cache
def _tree(sample: str) -> tuple[str, ast.Module]:
    source = (SAMPLES_DIR / sample).read_text(encoding="utf-8")
    return source, ast.parse(source, sample)


def function_def(sample: str, name: str) -> ast.FunctionDef:
    """The module-level function `name` of the sample."""
    _, tree = _tree(sample)
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    assert len(found) == 1, f"{sample} has {len(found)} functions named {name}"
    return found[0]


def method_calls(sample: str, function: str, method: str) -> list[tuple[int, str, str]]:
    """Every `<receiver>.<method>(...)` call in `function`: (line, line's code, receiver's source)."""
    source, _ = _tree(sample)
    lines = source.splitlines()
    calls = [node for node in ast.walk(function_def(sample, function))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == method]
    found = []
    for call in sorted(calls, key=lambda node: node.lineno):
        receiver = ast.get_source_segment(source, call.func.value)
        assert receiver is not None, f"no source for the receiver at {sample}:{call.lineno}"
        found.append((call.lineno, lines[call.lineno - 1].strip(), receiver))
    assert found, f"the test is wrong: no .{method}( call in {function} of {sample}"
    return found


def location_problems(diagnosis: SampleDiagnosis, location: dict[str, Any] | None, line: int,
                      what: str) -> list[str]:
    """How `location` (file, line, code) differs from line `line` of the sample; [] if it is that."""
    expected_file = SAMPLES_DIR / diagnosis.sample
    expected_code = diagnosis.source_lines[line - 1].strip()
    if location is None:
        return [f"{what}: no location, expected {expected_file}:{line} {expected_code!r}"]
    problems = []
    if Path(location["file"]) != expected_file:
        problems.append(f"{what}: file {location['file']}, expected {expected_file}")
    if location["line"] != line:
        problems.append(f"{what}: line {location['line']} ({location['code']!r}), expected {line} "
                        f"({expected_code!r})")
    elif location["code"].strip() != expected_code:
        problems.append(f"{what}: code {location['code']!r}, expected {expected_code!r}")
    return problems


# ----------------------------------------------------------------------------- helpers


def only_finding(diagnosis: SampleDiagnosis, kind: str) -> dict[str, Any]:
    findings = diagnosis.findings(kind)
    kinds = [finding["kind"] for finding in diagnosis.report["findings"]]
    assert len(findings) == 1, f"expected one {kind} finding, got {kinds}\n{diagnosis.context()}"
    return findings[0]


def finding_threads(diagnosis: SampleDiagnosis, finding: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The finding's threads by name; each must be a real thread of the sample."""
    threads = {thread["name"]: thread for thread in finding["threads"]}
    for name, thread in threads.items():
        assert_real_tid(diagnosis, thread, f"{finding['kind']} thread {name}")
    return threads


def assert_role(diagnosis: SampleDiagnosis, finding: dict[str, Any], name: str, role: str) -> None:
    threads = finding_threads(diagnosis, finding)
    assert name in threads, (
        f"the {finding['kind']} finding does not name {name}: {finding['threads']}\n{diagnosis.context()}")
    assert threads[name]["role"] == role, (
        f"{name} should have the role {role!r} in the {finding['kind']} finding, got "
        f"{threads[name]['role']!r}\n{diagnosis.context()}")


def main_thread_doing(diagnosis: SampleDiagnosis) -> str:
    main_thread = diagnosis.report.get("main_thread")
    assert isinstance(main_thread, dict) and isinstance(main_thread.get("doing"), str), (
        f"the report has no main_thread.doing: {main_thread!r}\n{diagnosis.context()}")
    return str(main_thread["doing"])


def suggestion_text(finding: dict[str, Any]) -> str:
    return "\n".join(f"{item.get('summary', '')}\n{item.get('example') or ''}"
                     for item in finding["suggestions"])


def assert_hang_text(diagnosis: SampleDiagnosis, *names: str) -> None:
    first = diagnosis.text.first_line
    assert "HANG" in first or "DEADLOCK" in first, diagnosis.context()
    assert "no hang" not in first.lower(), diagnosis.context()
    for name in names:
        assert name in first, f"the first line does not name {name}\n{diagnosis.context()}"


def assert_no_hang(diagnosis: SampleDiagnosis) -> None:
    assert_clean_run(diagnosis, EXIT_NO_HANG)
    # A busy pool or a job making progress may be `busy`: working, never hung.
    assert diagnosis.report["verdict"] in ("no-hang", "busy"), diagnosis.context()
    first = diagnosis.text.first_line.lower()
    assert "no hang" in first or "busy, not hung" in first, diagnosis.context()
    critical = [finding["kind"] for finding in diagnosis.report["findings"]
                if finding["severity"] == "critical"]
    assert not critical, f"critical findings in a process that is not hung: {critical}\n{diagnosis.context()}"


# ----------------------------------------------------------------------------- all samples


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_report_matches_schema(python_interpreter: Path, diagnose_sample: Diagnose,
                                    validate_json_report: Callable[[Any, str], None], sample: str) -> None:
    diagnosis = diagnose_sample(python_interpreter, sample)
    validate_json_report(diagnosis.report, diagnosis.sample)
    assert diagnosis.report["target"]["pid"] == diagnosis.pid, diagnosis.context()


# ----------------------------------------------------------------------------- 1. starved pool


def test_report_pool_is_starved(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, REPORT_POOL)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] == "hang", diagnosis.context()
    assert_hang_text(diagnosis, "report")
    finding = only_finding(diagnosis, "executor-starvation")
    pool = finding["resources"][0]
    assert (pool["name"], pool["detail"]) == ("report", "4 workers"), (
        f"resources[0] should be the pool report with 4 workers: {finding['resources']}")
    for index in range(4):
        assert_role(diagnosis, finding, f"report_{index}", "starved worker")


def test_report_pool_evidence_quotes_the_nested_submit(python_interpreter: Path,
                                                       diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, REPORT_POOL)
    finding = only_finding(diagnosis, "executor-starvation")
    evidence = finding["evidence"]
    for line, code, _ in method_calls(REPORT_POOL, "render_section", "submit"):
        quoting = [item for item in evidence if item["line"] == line]
        assert quoting, f"no evidence points at line {line} ({code!r}): {evidence}\n{diagnosis.context()}"
        problems = location_problems(diagnosis, quoting[0], line, "submit evidence")
        assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- 2. futures in a ring


# The task each stage runs, and the future it waits for, as the sample spells it.
CROSS_WAIT_TASKS = ("parse_rows", "infer_schema")


def test_futures_waiting_on_each_other_is_a_cycle(python_interpreter: Path,
                                                  diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, CROSS_WAIT)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] in ("hang", "deadlock"), diagnosis.context()
    assert_hang_text(diagnosis, "stage_0", "stage_1")
    finding = only_finding(diagnosis, "future-cross-wait")
    cycle = finding["cycle"]
    names = sorted(step["thread"]["name"] for step in cycle)
    assert names == ["stage_0", "stage_1"], f"cycle threads {names}\n{diagnosis.context()}"

    waits = {}  # line of the waiting `.result()` -> the future's expression there
    for task in CROSS_WAIT_TASKS:
        ((line, _, receiver),) = method_calls(CROSS_WAIT, task, "result")
        waits[line] = receiver
    problems: list[str] = []
    for step in cycle:
        name = step["thread"]["name"]
        other = "stage_1" if name == "stage_0" else "stage_0"
        assert_real_tid(diagnosis, step["thread"], f"cycle step {name}")
        assert_real_tid(diagnosis, step["held_by"], f"cycle step {name}, holder")
        waits_at = step["waits_at"]
        line = waits_at["line"] if waits_at else None
        if line not in waits:
            problems.append(f"{name}: waits_at {waits_at}, expected one of the lines {sorted(waits)}")
            continue
        problems += location_problems(diagnosis, waits_at, line, f"{name}: waits_at")
        got = {"via": step["via"], "waits_for.name": step["waits_for"]["name"],
               "held_by.name": step["held_by"]["name"]}
        wanted = {"via": "future", "waits_for.name": waits[line], "held_by.name": other}
        problems += [f"{name}: {key} {got[key]!r}, expected {wanted[key]!r}"
                     for key in wanted if got[key] != wanted[key]]
    lines = sorted(step["waits_at"]["line"] for step in cycle if step["waits_at"])
    if lines != sorted(waits):
        problems.append(f"the two steps wait at lines {lines}, expected one each at {sorted(waits)}")
    assert not problems, ("the future-cross-wait cycle differs from the sample:\n  "
                          + "\n  ".join(problems) + f"\n{diagnosis.context()}")


def test_futures_waiting_on_each_other_is_not_starvation(python_interpreter: Path,
                                                         diagnose_sample: Diagnose) -> None:
    # The waited futures run on the other worker: none is queued behind a waiting task.
    diagnosis = diagnose_sample(python_interpreter, CROSS_WAIT)
    kinds = [finding["kind"] for finding in diagnosis.report["findings"]]
    assert "executor-starvation" not in kinds, (
        f"both futures are running, not queued: {kinds}\n{diagnosis.context()}")


# ----------------------------------------------------------------------------- 3, 4. exit blocked


@pytest.mark.parametrize(("sample", "blocker", "fixes"), [
    (POLLER_EXIT, "metrics-poller", ("Event", "join(timeout")),
    (CONSUMER_EXIT, "order-consumer", ("sentinel",)),
])
def test_exit_blocked_by_non_daemon_thread(python_interpreter: Path, diagnose_sample: Diagnose,
                                           sample: str, blocker: str, fixes: tuple[str, ...]) -> None:
    diagnosis = diagnose_sample(python_interpreter, sample)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] == "hang", diagnosis.context()
    assert_hang_text(diagnosis, blocker)
    finding = only_finding(diagnosis, "blocked-shutdown")
    assert "MainThread" in finding_threads(diagnosis, finding), (
        f"the finding does not name MainThread: {finding['threads']}\n{diagnosis.context()}")
    assert_role(diagnosis, finding, blocker, KEEPS_ALIVE)
    assert "finished the script" in main_thread_doing(diagnosis), diagnosis.context()
    suggestions = suggestion_text(finding)
    for fix in fixes:
        assert fix in suggestions, f"no suggestion mentions {fix!r}:\n{suggestions}"


# ----------------------------------------------------------------------------- 5. with-block shutdown


def test_executor_shutdown_waits_for_stuck_worker(python_interpreter: Path,
                                                  diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, SHUTDOWN_STUCK)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] == "hang", diagnosis.context()
    assert_hang_text(diagnosis, "upload_0")
    finding = only_finding(diagnosis, "blocked-shutdown")
    assert_role(diagnosis, finding, "upload_0", KEEPS_ALIVE)
    assert "cancel_futures=True" in suggestion_text(finding), finding["suggestions"]
    assert "shut" in main_thread_doing(diagnosis), diagnosis.context()


# ----------------------------------------------------------------------------- 6. process pool


def test_process_pool_sample_has_a_live_worker_process(python_interpreter: Path,
                                                       diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, PROCESS_POOL)
    assert len(diagnosis.children) == 1, (
        f"expected one worker process, got {sorted(diagnosis.children)}\n{diagnosis.context()}")


def test_process_pool_names_the_running_worker_process(python_interpreter: Path,
                                                       diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, PROCESS_POOL)
    assert diagnosis.report["verdict"] == "hang", diagnosis.context()
    (child,) = diagnosis.children
    texts = []
    for finding in diagnosis.report["findings"]:
        texts.append(finding["explanation"])
        texts += [f"{item['note']} {item['code']}" for item in finding["evidence"]]
    telling = [text for text in texts
               if str(child) in text and any(word in text for word in ("running", "alive"))]
    assert telling, (f"no finding says that worker process {child} is still running\n"
                     f"{diagnosis.context()}")


# ----------------------------------------------------------------------------- not hangs


def test_busy_pool_is_no_hang(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, BUSY_POOL)
    assert_no_hang(diagnosis)
    assert not diagnosis.findings("executor-starvation"), diagnosis.context()
    waiting = {name: thread["wait"]["kind"] for name, thread in diagnosis.threads().items()
               if name.startswith("thumbnail_")
               and thread["wait"]["kind"] in ("future-result", "futures-wait")}
    assert not waiting, f"workers that wait on futures: {waiting}\n{diagnosis.context()}"


def test_exit_waiting_for_progressing_job_is_no_hang(python_interpreter: Path,
                                                     diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, PROGRESSING_EXIT)
    assert_no_hang(diagnosis)
    assert not diagnosis.findings("blocked-shutdown"), diagnosis.context()
    assert "finished the script" in main_thread_doing(diagnosis), diagnosis.context()
