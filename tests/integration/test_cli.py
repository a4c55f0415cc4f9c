"""The CLI as a newcomer meets it: `threaddoc demo`, `--version`, pipes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from threaddoc import __version__
from threaddoc.demo import SCENARIOS

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
