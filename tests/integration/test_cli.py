"""The CLI as a newcomer meets it: `threaddoc demo`, `--version`, pipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from threaddoc import __version__
from threaddoc.demo import SCENARIOS, sample_path

pytestmark = pytest.mark.integration


def _threaddoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threaddoc", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"})


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_demo_diagnoses_each_scenario_as_expected(scenario: str) -> None:
    result = _threaddoc("demo", scenario, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == SCENARIOS[scenario].expected_verdict


def test_demo_default_is_the_lock_order_deadlock_in_text() -> None:
    result = _threaddoc("demo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("threaddoc: DEADLOCK")
    assert "\x1b[" not in result.stdout  # not a terminal: no color


def test_version_and_help() -> None:
    assert _threaddoc("--version").stdout.strip() == f"threaddoc, version {__version__}"
    help_text = _threaddoc("diagnose", "--help").stdout
    for option in ("--json", "--timeout", "--py-spy", "--color"):
        assert option in help_text
    assert "Exit status" in help_text


def test_a_closed_pipe_keeps_the_diagnosis_exit_status() -> None:
    # The reader (`true`) is gone before the report is written: the status is still 0 (no
    # hang), not the 1 that would mean "hang".
    pipeline = subprocess.run(
        f"{sys.executable} -m threaddoc demo healthy | true; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120, check=False,
    )
    assert pipeline.returncode == 0, pipeline.stderr
    assert "Traceback" not in pipeline.stderr


def test_a_script_started_by_a_relative_path_is_read_from_the_target_cwd(python_interpreter: Path) -> None:
    # CPython 3.8 keeps `python app.py`'s path relative in its frames: threaddoc must read
    # it from the target's working directory to say which lines wait.
    python = python_interpreter
    samples = Path(sample_path("lock_order_deadlock.py")).parent
    with tempfile.TemporaryDirectory() as workdir:
        ready = Path(workdir) / "ready"
        process = subprocess.Popen([str(python), "lock_order_deadlock.py", str(ready)], cwd=samples,
                                   start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.02)
            assert ready.exists(), "sample did not get ready"
            result = _threaddoc("diagnose", str(process.pid), "--json")
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    report = json.loads(result.stdout)
    [finding] = report["findings"]
    assert {step["waits_at"]["code"] for step in finding["cycle"]} == {"with audit_lock:",
                                                                      "with ledger_lock:"}
